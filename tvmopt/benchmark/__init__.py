"""The benchmark harness behind `tvmopt bench` and `make bench`: a model suite built locally from
seeded weights (`models`), contenders (`contenders`), alternating timed runs (`harness`), FLOP
counts (`flops`) and reports (`report`)."""
