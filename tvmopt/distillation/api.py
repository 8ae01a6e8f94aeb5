"""tvmopt.distill: train a student (a pruned or shallower model) to answer as its teacher does,
on unlabeled inputs, and write the trained weights back into the student's own ONNX graph."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..artifact import atomic_output, check_writable
from ..errors import InputError, ModelLoadError, OptionError, first_line
from ..frontend.onnx import load_model
from ..frontend.signature import graph_inputs
from . import checkpoint
from .compatible import check_signatures, resolve_pairs
from .converter import OnnxModule, check_supported, write_back
from .data import DEFAULT_MAX_LENGTH, batchable, load_samples, split_held_out
from .fake_quant import enable_fake_quant
from .losses import LossConfig, channel_axis
from .result import DistillResult
from .torch_model import TorchModel
from .trainer import Pairs, TrainConfig, Trainer

HIDDEN_OPS = ("LayerNormalization",)
ATTENTION_OPS = ("Softmax",)


def distill(teacher, student, data, output=None, *, tokenizer=None,
            max_length: int = DEFAULT_MAX_LENGTH, held_out: float = 0.1,
            checkpoint_dir=None, resume: bool = False, progress: bool = True,
            measure: bool = False, **options) -> DistillResult:  # fmt: skip
    """Distill `teacher` into `student` on unlabeled `data`.

    Parameters
    ----------
    teacher, student : path, bytes, onnx.ModelProto or torch.nn.Module
        ONNX models run in torch through tvmopt's converter; they must take the same inputs and
        give the same outputs.
    data : path or iterable of dicts
        A folder of .npz input sets (the calibration format), one .npz, input dicts, or with
        `tokenizer` a text file of one sentence per line.
    output : path, optional
        Where to write the trained student (ONNX). Checked for writability before training.
    tokenizer : path or tokenizers.Tokenizer, optional
        A folder with tokenizer.json, for text data; sequences are cut at `max_length` tokens.
    held_out : float
        The share of input sets kept out of training to evaluate agreement.
    checkpoint_dir : path, optional
        Where checkpoints go; with `resume`, training continues from the one there.
    measure : bool
        Also compile teacher and trained student for this host and time them (ONNX only).
    **options
        Fields of TrainConfig (steps, batch_size, lr, warmup, clip, eval_every, seed,
        fake_quant, layerwise_steps, layerwise_lr...) and LossConfig (output, temperature,
        hidden, attention and weights).

    Returns
    -------
    DistillResult
        The trained student (ONNX where it was given as ONNX), held-out metrics before and
        after, and the evaluation history.
    """
    train_config, loss_config = _configs(options)
    if output is not None:
        check_writable(output)
    t_model, t_module = _load(teacher, "teacher")
    s_model, s_module = _load(student, "student")
    if t_model is not None and s_model is not None:
        check_signatures(t_model, s_model)
    specs = graph_inputs((s_model or t_model).graph) if (s_model or t_model) else None
    samples = _samples(data, specs, tokenizer, max_length)
    train, evaluation = split_held_out(samples, held_out)
    teacher_m, student_m = _wrap(t_module, samples[0]), _wrap(s_module, samples[0])
    pairs = _pairs(loss_config, t_model, s_model)
    stack = specs is not None and batchable(specs)
    widths = _probe(teacher_m, student_m, pairs, samples[0])
    if train_config.fake_quant:
        _enable_fake_quant(student_m)
    trainer = Trainer(teacher_m, student_m, pairs, widths, loss_config, train_config, train,
                      evaluation, stack)  # fmt: skip
    if train_config.layerwise_steps and not trainer.forced_pairs():
        raise OptionError("layerwise_steps needs hidden states of equal width in teacher and "
                          "student (LayerNorm outputs both name alike, or hidden=...)")  # fmt: skip
    directory, key = _checkpoints(checkpoint_dir, trainer, t_model, s_model, samples)
    if resume and directory is not None:
        state = checkpoint.load(directory, key)
        if state is not None:
            trainer.restore(state)
    before = _metrics_before(trainer, teacher_m, s_module, s_model)
    started = time.perf_counter()
    history = trainer.run(directory, key, progress)
    seconds = time.perf_counter() - started
    result = _finish(output, s_model, student_m, samples[0], before, history, seconds)
    if measure and t_model is not None and result.model is not None:
        from .measure import measure as measure_compiled

        result.measured = measure_compiled(t_model, result.model, evaluation)
    return result


def _configs(options: dict) -> tuple[TrainConfig, LossConfig]:
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    loss_fields = {f.name for f in dataclasses.fields(LossConfig)}
    unknown = sorted(set(options) - train_fields - loss_fields)
    if unknown:
        raise OptionError(f"unknown distill option {unknown[0]!r}; options are "
                          f"{', '.join(sorted(train_fields | loss_fields))}")  # fmt: skip
    train = TrainConfig(**{k: v for k, v in options.items() if k in train_fields})
    losses = LossConfig(**{k: v for k, v in options.items() if k in loss_fields})
    return train, losses


def _load(source, role: str) -> tuple[onnx.ModelProto | None, nn.Module]:
    if isinstance(source, nn.Module):
        return None, source
    try:
        model = load_model(source)
    except ModelLoadError as err:
        raise ModelLoadError(f"{role}: {err}") from None
    check_supported(model)
    return model, OnnxModule(model)


def _samples(data, specs, tokenizer, max_length: int) -> list[dict]:
    if specs is not None:
        return load_samples(data, specs, tokenizer, max_length)
    if isinstance(data, (str, Path)):
        raise InputError("with torch.nn.Module teacher and student, give data as input dicts")
    samples = [{k: np.asarray(v) for k, v in sample.items()} for sample in data]
    if not samples:
        raise InputError("distillation data holds no samples")
    return samples


def _wrap(module: nn.Module, sample: dict) -> nn.Module:
    if isinstance(module, OnnxModule):
        return module
    return TorchModel(module, list(sample))


def _pairs(config: LossConfig, teacher, student) -> Pairs:
    if teacher is None or student is None:  # torch modules: names are submodule names
        hidden = {} if config.hidden == "auto" else dict(_as_map(config.hidden))
        attention = {} if config.attention == "auto" else dict(_as_map(config.attention))
        return Pairs(hidden, attention)
    hidden = resolve_pairs(config.hidden, teacher, student, HIDDEN_OPS)
    attention = resolve_pairs(config.attention, teacher, student, ATTENTION_OPS)
    return Pairs(hidden, attention if config.attention_weight > 0 else {})


def _as_map(chosen) -> dict:
    return dict(chosen) if isinstance(chosen, dict) else {name: name for name in chosen}


def _probe(teacher, student, pairs: Pairs, sample: dict) -> dict:
    """One forward pass of each model on the first input set, before training: it fails here,
    with the sample named, on data the models cannot run; and it measures the hidden widths."""
    teacher.set_capture([*pairs.hidden.values(), *pairs.attention.values()])
    student.set_capture([*pairs.hidden, *pairs.attention])
    feeds = {name: torch.from_numpy(value) for name, value in sample.items()}
    outs = {}
    for role, model in (("teacher", teacher), ("student", student)):
        try:
            with torch.no_grad():
                outs[role] = model(**feeds)
        except (RuntimeError, ValueError, IndexError, KeyError, TypeError) as err:
            raise InputError(f"the {role} cannot run the first input set: "
                             f"{first_line(err)}") from None  # fmt: skip
    _check_outputs(student.output_names, outs)
    for s in pairs.attention:
        if outs["student"][s].dim() != 4:
            raise InputError(f"attention map '{s}' must be (batch, heads, queries, keys)")
    return {s: _width(outs["student"][s], outs["teacher"][t]) for s, t in pairs.hidden.items()}


def _check_outputs(names: list[str], outs: dict) -> None:
    for name in names:
        s, t = outs["student"][name], outs["teacher"][name]
        if s.shape != t.shape:
            raise InputError(f"output '{name}' of the student has shape {tuple(s.shape)}, the "
                             f"teacher's {tuple(t.shape)}")  # fmt: skip


def _width(student: torch.Tensor, teacher: torch.Tensor) -> tuple[int, int]:
    axis = channel_axis(student)
    rest = [d for i, d in enumerate(student.shape) if i != axis % student.dim()]
    if rest != [d for i, d in enumerate(teacher.shape) if i != axis % teacher.dim()]:
        raise InputError(f"hidden states of shapes {tuple(student.shape)} (student) and "
                         f"{tuple(teacher.shape)} (teacher) differ beyond their width")  # fmt: skip
    return student.shape[axis], teacher.shape[axis]


def _enable_fake_quant(student: nn.Module) -> None:
    if not isinstance(student, OnnxModule):
        raise OptionError("fake_quant needs the student as ONNX")
    enable_fake_quant(student)


def _checkpoints(directory, trainer: Trainer, teacher, student, samples) -> tuple:
    if directory is None:
        return None, ""
    data = [bytes(np.ascontiguousarray(v)) for s in samples for v in s.values()]
    models = [m.SerializeToString() for m in (teacher, student) if m is not None]
    key = checkpoint.fingerprint(*models, *data, trainer.describe_config())
    return checkpoint.prepare_directory(directory), key


def _metrics_before(trainer: Trainer, teacher, s_module, s_model) -> dict:
    if trainer.step == 0:
        return trainer.evaluate()
    fresh = OnnxModule(s_model) if s_model is not None else None  # the untrained student
    if fresh is None:
        return {}
    fresh.hooks = trainer.student.hooks
    trained, trainer.student = trainer.student, fresh
    try:
        return trainer.evaluate()
    finally:
        trainer.student = trained


def _finish(output, s_model, student, sample, before, history, seconds) -> DistillResult:
    student.hooks = {}  # the trained float weights go out; --quantize int8 rounds them later
    model = write_back(s_model, student) if s_model is not None else None
    if output is not None:
        with atomic_output(output) as tmp:
            if model is not None:
                onnx.save(model, tmp)
            else:
                _export_torch(student, sample, tmp)
    after = {k: v for k, v in history[-1].items() if k not in ("step", "loss", "seconds")}
    return DistillResult(model, student, before, after, history, seconds)


def _export_torch(student: TorchModel, sample: dict, path: str) -> None:
    feeds = tuple(torch.from_numpy(sample[name]) for name in student.input_names)
    torch.onnx.export(student.module.eval(), feeds, path, input_names=student.input_names,
                      opset_version=17, dynamo=False)  # fmt: skip
