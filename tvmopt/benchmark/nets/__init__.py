"""Networks of the bench suite, in plain PyTorch. Importing any of them imports torch."""
