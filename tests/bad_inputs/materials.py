"""The files the bad-input corpus (cases.py) points at, written once per test session: good
models and libraries to misuse, and broken copies of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import tvmopt

from ..helpers import flipped, make_model, relu_model

FLOAT = TensorProto.FLOAT
STRING = TensorProto.STRING
SAPPHIRE_RAPIDS = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "sapphirerapids"}
ARM = {"kind": "llvm", "mtriple": "aarch64-linux-gnu"}


def write_materials(folder: Path) -> Path:
    """Every file the cases name, in `folder`."""
    for write in (_models, _broken_models, _libraries, _data, _databases):
        write(folder)
    return folder


def _models(folder: Path) -> None:
    onnx.save(relu_model(), folder / "relu.onnx")  # x: float32[2,3]
    relu = helper.make_node("Relu", ["x"], ["y"])
    dynamic = make_model([relu], [("x", FLOAT, ["n", 3])], [("y", FLOAT, ["n", 3])])
    onnx.save(dynamic, folder / "dynamic.onnx")
    unnamed = make_model([relu], [("x", FLOAT, [None, 3])], [("y", FLOAT, [None, 3])])
    onnx.save(unnamed, folder / "unnamed.onnx")  # named dims compile (symbolic); unnamed do not
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                      [("x", FLOAT, [1, 2, 4, 4])], [("y", FLOAT, [1, 2, 2, 2])],
                      {"w": np.ones((2, 2, 3, 3), np.float32)})  # fmt: skip
    onnx.save(conv, folder / "conv.onnx")


def _broken_models(folder: Path) -> None:
    good = (folder / "relu.onnx").read_bytes()
    (folder / "notes.onnx").write_text("these are my notes, not a model\n")
    (folder / "empty.onnx").write_bytes(b"")
    (folder / "half.onnx").write_bytes(good[: len(good) // 2])
    (folder / "a_folder.onnx").mkdir()
    newer = relu_model()
    newer.opset_import[0].version = 99
    onnx.save(newer, folder / "opset99.onnx")
    undefined = relu_model()
    undefined.graph.node[0].input[0] = "nowhere"
    onnx.save(undefined, folder / "undefined_input.onnx")
    _op_models(folder)
    _external_data_models(folder)


def _op_models(folder: Path) -> None:
    strings = make_model([helper.make_node("StringNormalizer", ["x"], ["y"], name="normalizer")],
                         [("x", STRING, [3])], [("y", STRING, [3])])  # fmt: skip
    onnx.save(strings, folder / "strings.onnx")
    custom = make_model([helper.make_node("Fancy", ["x"], ["y"], domain="com.example")],
                        [("x", FLOAT, [2])], [("y", FLOAT, [2])],
                        extra_opsets={"com.example": 1})  # fmt: skip
    onnx.save(custom, folder / "custom_op.onnx")
    matmul = make_model([helper.make_node("MatMul", ["a", "b"], ["y"], name="scores")],
                        [("a", FLOAT, [2, 3]), ("b", FLOAT, [4, 5])],
                        [("y", FLOAT, [2, 5])])  # fmt: skip
    onnx.save(matmul, folder / "matmul_mismatch.onnx")


def _weights_model() -> onnx.ModelProto:
    weights = numpy_helper.from_array(np.ones((3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", FLOAT, [2, 3])],
                              [weights])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external_data_models(folder: Path) -> None:
    """Models whose weights file is gone, or shorter than the weights."""
    for name, data in (("lost_weights", None), ("short_weights", b"\0" * 8)):
        onnx.save(_weights_model(), folder / f"{name}.onnx", save_as_external_data=True,
                  location=f"{name}.bin", size_threshold=0)  # fmt: skip
        (folder / f"{name}.bin").unlink()
        if data is not None:
            (folder / f"{name}.bin").write_bytes(data)


def _libraries(folder: Path) -> None:
    tvmopt.compile(relu_model()).export(folder / "relu.so")
    data = (folder / "relu.so").read_bytes()
    (folder / "cut.so").write_bytes(data[: len(data) // 2])
    (folder / "flipped.so").write_bytes(flipped(data))
    (folder / "notes.so").write_text("not a library\n")
    tvmopt.compile(relu_model(), target=SAPPHIRE_RAPIDS).export(folder / "sapphire.so")
    if shutil.which("aarch64-linux-gnu-g++"):
        tvmopt.compile(relu_model(), target=ARM).export(folder / "arm.so")
    (folder / "not_a_package").mkdir()
    (folder / "not_a_package" / "mine.txt").write_text("someone else's folder\n")


def _data(folder: Path) -> None:
    x = np.ones((2, 3), np.float32)
    np.savez(folder / "good.npz", x=x)
    np.savez(folder / "wrong_name.npz", image=x)
    np.savez(folder / "wrong_shape.npz", x=np.ones((3, 2), np.float32))
    np.savez(folder / "wrong_dtype.npz", x=np.ones((2, 3), np.int32))
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "empty_calib").mkdir()
    np.savez(folder / "conv_calib.npz", x=np.ones((1, 2, 4, 4), np.float32))


def _databases(folder: Path) -> None:
    broken = folder / "broken_db"
    broken.mkdir()
    (broken / "database_workload.json").write_text("{ this is not json\n")
    (broken / "database_tuning_record.json").write_text("[1, 2]\n")
    (folder / "db_file").write_text(json.dumps({"not": "a database folder"}))
