"""A torch.nn.Module given as teacher or student, made to answer as OnnxModule does:
`forward(**inputs)` -> {name: tensor}, outputs named output_0.. and hidden states captured by
submodule name through forward hooks."""

from __future__ import annotations

import torch
from torch import nn


class TorchModel(nn.Module):
    def __init__(self, module: nn.Module, input_names: list[str]):
        super().__init__()
        self.module = module
        self.input_names = list(input_names)
        self.output_names: list[str] = []
        self.capture: tuple[str, ...] = ()
        self.hooks: dict = {}
        self.forced: dict[str, torch.Tensor] = {}  # as OnnxModule.forced, by submodule name
        self._captured: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def set_capture(self, names) -> None:
        for handle in self._handles:
            handle.remove()
        submodules = dict(self.module.named_modules())
        self.capture = tuple(names)
        self._handles = [submodules[name].register_forward_hook(self._hook(name))
                         for name in self.capture]  # fmt: skip

    def _hook(self, name: str):
        def keep(module, args, output):
            self._captured[name] = output[0] if isinstance(output, tuple) else output
            forced = self.forced.get(name)
            if forced is None:
                return None
            return (forced, *output[1:]) if isinstance(output, tuple) else forced

        return keep

    def forward(self, **inputs) -> dict[str, torch.Tensor]:
        out = self.module(*(inputs[name] for name in self.input_names))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        self.output_names = [f"output_{i}" for i in range(len(outs))]
        return {**dict(zip(self.output_names, outs, strict=True)), **self._captured}
