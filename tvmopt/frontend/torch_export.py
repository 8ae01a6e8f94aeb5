"""PyTorch input: export a `torch.nn.Module` to ONNX in memory.

torch stays optional: nothing here imports it unless the model already is a torch module, and a
torch module can only exist if the caller imported torch first.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import sys
import warnings

import onnx

from ..errors import ModelLoadError, first_line

OPSET = 18


def is_torch_module(model) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def to_onnx(module, example_inputs, dynamo: bool = False, opset: int = OPSET) -> onnx.ModelProto:
    """Export `module` called on `example_inputs` (a tensor, or a tuple or list of tensors).

    Parameters
    ----------
    module : torch.nn.Module
        Put in eval mode before export.
    example_inputs : torch.Tensor or tuple of torch.Tensor
        Fix the exported input shapes and dtypes.
    dynamo : bool
        Use the torch.export-based exporter instead of the TorchScript one.
    opset : int
        The ONNX opset to export to.
    """
    import torch

    if example_inputs is None:
        raise ModelLoadError("a PyTorch module needs example_inputs=(tensor, ...) to be exported")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    buffer = io.BytesIO()
    module.eval()
    try:
        with torch.no_grad(), without_mha_fastpath(torch), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(torch, module, args, buffer, dynamo, opset)
    except Exception as err:  # noqa: BLE001 - torch's exporters raise any type
        message = f"torch.onnx.export failed: {type(err).__name__}: {first_line(err)}"
        raise ModelLoadError(message) from err
    return onnx.load_model_from_string(buffer.getvalue())


@contextlib.contextmanager
def without_mha_fastpath(torch):
    """Make nn.TransformerEncoder and nn.MultiheadAttention take their plain path.

    In eval mode under no_grad they call fused kernels (aten::_transformer_encoder_layer_fwd,
    aten::_native_multi_head_attention) that the TorchScript exporter cannot export.
    """
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _export(torch, module, args, buffer, dynamo: bool, opset: int) -> None:
    names = input_names(module, len(args))
    if dynamo:
        program = torch.onnx.export(
            module, args, input_names=names, dynamo=True, opset_version=opset
        )
        buffer.write(program.model_proto.SerializeToString())
        return
    torch.onnx.export(module, args, buffer, input_names=names, opset_version=opset, dynamo=False)


def input_names(module, count: int) -> list[str]:
    """Name inputs after forward()'s parameters, so `run({"input_ids": ...})` reads naturally."""
    try:
        params = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        params = []
    params = [p for p in params if p not in ("args", "kwargs")]
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]
