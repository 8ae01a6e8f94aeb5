"""When TVM's ONNX importer fails on a node, say which node, with its input shapes and the rule
it broke, in one line. TVM's own report is the ValueError of a Relax op ("Matmul requires the
reduction length of the operands to be equal. However, the LHS lv has shape ..."), a print of
the node's Relax inputs on stdout, and, once the importer is freed, a C++ warning on stderr
("BlockBuilder destroyed with remaining blocks!"): none of it names the ONNX node."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
from collections.abc import Iterator

import onnx
from tvm.relax.frontend.onnx import onnx_frontend

from ..errors import first_line


class NodeImportError(Exception):
    """The ONNX node TVM's importer failed on, and why."""

    def __init__(self, node_name: str, op_type: str, inputs: list, reason: str):
        self.node_name, self.op_type, self.inputs, self.reason = node_name, op_type, inputs, reason
        super().__init__(reason)

    def describe(self, model: onnx.ModelProto) -> str:
        node = next((n for n in model.graph.node if n.name and n.name == self.node_name), None)
        names = list(node.input) if node is not None else [""] * len(self.inputs)
        shapes = ", ".join(f"{name or '?'}: {_shape(value)}"
                           for name, value in zip(names, self.inputs, strict=False))  # fmt: skip
        label = f"'{self.node_name}'" if self.node_name else "(unnamed)"
        return f"node {label} ({self.op_type}) with inputs {shapes}: {_first_sentence(self.reason)}"


@contextlib.contextmanager
def naming_failed_nodes() -> Iterator[None]:
    """Within the block, a converter's failure is a NodeImportError; TVM's print of the node's
    inputs goes nowhere."""
    original = onnx_frontend.ONNXGraphImporter._convert_operator

    def convert(self, op_name, inputs, attrs, opset):
        try:
            return original(self, op_name, inputs, attrs, opset)
        except Exception as err:  # noqa: BLE001 - the converters raise any type
            name = attrs.get("tvm_custom", {}).get("name", "")
            raise NodeImportError(name, op_name, list(inputs), str(err)) from None

    onnx_frontend.ONNXGraphImporter._convert_operator = convert
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        onnx_frontend.ONNXGraphImporter._convert_operator = original


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Within the block, what TVM's C++ side writes to stderr goes nowhere: a failed importer's
    BlockBuilder warns when it is freed with the blocks the failure left open. Python's own
    errors are raised, not printed, so nothing of the user's is lost."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
            gc.collect()  # free a failed importer here, not later with stderr back
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _shape(value) -> str:
    """A Relax input as dtype[dims], or what it is where it has no tensor type."""
    ty = getattr(value, "ty", None)
    shape, dtype = getattr(ty, "shape", None), getattr(ty, "dtype", None)
    if shape is None or dtype is None:
        return type(value).__name__
    dims = (str(getattr(d, "value", d)) for d in shape.values)
    return f"{dtype}[{','.join(dims)}]"


def _first_sentence(text: str) -> str:
    line = first_line(text)
    return re.split(r"(?<=\.)\s+", line)[0].rstrip(".")
