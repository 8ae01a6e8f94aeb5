import onnx
import pytest

import tvmopt
from tvmopt.demo import build_demo_model


@pytest.fixture(scope="session")
def demo_model() -> onnx.ModelProto:
    return build_demo_model()


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory, demo_model) -> str:
    path = tmp_path_factory.mktemp("models") / "demo.onnx"
    onnx.save(demo_model, path)
    return str(path)


@pytest.fixture(scope="session")
def compiled_demo(demo_model) -> tvmopt.CompiledModel:
    return tvmopt.compile(demo_model)


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory, compiled_demo) -> str:
    path = tmp_path_factory.mktemp("libs") / "demo.so"
    compiled_demo.export(path)
    return str(path)
