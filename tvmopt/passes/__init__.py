"""Our graph passes over Relax: constant folding, simplification, operator fusion and int8
quantization (`passes/quantize/`), each in its own file, assembled into one flat pipeline per
optimization level. The spine compiles with TVM's default Relax pipeline until they land."""
