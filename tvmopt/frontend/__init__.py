"""Frontends: ONNX (`onnx`), PyTorch through in-memory ONNX export (`torch_export`), and an ONNX
backend (`backend`) that runs onnx's own conformance suite through tvmopt."""
