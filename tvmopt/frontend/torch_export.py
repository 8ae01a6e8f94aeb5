"""PyTorch input: export a `torch.nn.Module` to ONNX in memory.

torch stays optional: nothing here imports it unless the model already is a torch module, and a
torch module can only exist if the caller imported torch first.
"""

from __future__ import annotations

import inspect
import io
import sys
import warnings

import onnx

from ..errors import ModelLoadError

OPSET = 18


def is_torch_module(model) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def to_onnx(module, example_inputs, dynamo: bool = False) -> onnx.ModelProto:
    """Export `module` called on `example_inputs` (a tensor or a tuple of tensors)."""
    import torch

    if example_inputs is None:
        raise ModelLoadError("a PyTorch module needs example_inputs=(tensor, ...) to be exported")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    buffer = io.BytesIO()
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(torch, module, args, buffer, dynamo)
    except Exception as err:  # noqa: BLE001 - torch's exporters raise any type
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise ModelLoadError(f"torch.onnx.export failed: {type(err).__name__}: {first_line}") from err
    return onnx.load_model_from_string(buffer.getvalue())


def _export(torch, module, args, buffer, dynamo: bool) -> None:
    names = input_names(module, len(args))
    if dynamo:
        program = torch.onnx.export(module, args, input_names=names, dynamo=True, opset_version=OPSET)
        buffer.write(program.model_proto.SerializeToString())
        return
    torch.onnx.export(module, args, buffer, input_names=names, opset_version=OPSET, dynamo=False)


def input_names(module, count: int) -> list[str]:
    """Name inputs after forward()'s parameters, so `run({"input_ids": ...})` reads naturally."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        params = []
    params = [p for p in params if p not in ("args", "kwargs")]
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]
