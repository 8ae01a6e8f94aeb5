"""Layer-wise distillation (tvmopt.distill(layerwise_steps=N)): each student block is fed the
teacher's hidden state where it enters, so its loss reaches no earlier block; the phase alone
raises held-out agreement of the tiny pruned BERT, and the written student compiles and matches
ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import tvmopt
from tvmopt.distillation.converter import OnnxModule
from tvmopt.distillation.losses import layerwise_loss
from tvmopt.distillation.schedule import two_phases
from tvmopt.errors import OptionError

from .distill_models import (
    bert_student,
    bert_teacher,
    digit_samples,
    mlp_student,
    mlp_teacher,
    save_samples,
    sentences,
    word_tokenizer,
)
from .helpers import assert_matches_ort

FAST = dict(threads=1, progress=False)
IDS = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0]])


def _norms(model: onnx.ModelProto) -> list[str]:
    return [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"]


def _weights_of(model: onnx.ModelProto, layer: str) -> set[str]:
    """The initializers that nodes of `layer` (by node name) read."""
    return {i for n in model.graph.node if n.name.startswith(layer) for i in n.input}


def _teacher_states(names: list[str]) -> dict:
    teacher = OnnxModule(bert_teacher())
    teacher.set_capture(names)
    with torch.no_grad():
        return teacher(input_ids=IDS)


def test_forced_blocks_learn_from_the_teacher_input_alone():
    """The last block's loss, with every hidden state forced, reaches the last layer's weights
    and none of the first layer's: no error compounds from one block to the next."""
    model = bert_student()
    names = _norms(model)
    teacher = _teacher_states(names)
    student = OnnxModule(model)
    student.set_capture(names)
    student.forced = {name: teacher[name] for name in names}
    out = student(input_ids=IDS)
    last = names[-1]
    assert not torch.equal(out[last], teacher[last])  # the captured value is the student's own
    layerwise_loss({last: last}, out, teacher).backward()
    grads = {n: p.grad for n, p in student.parameters_by_name().items()}
    first_layer = [grads[n] for n in _weights_of(model, "/layers.0/") if n in grads]
    last_layer = [grads[n] for n in _weights_of(model, "/layers.1/") if n in grads]
    assert first_layer and all(g is None or not g.any() for g in first_layer)
    assert any(g is not None and g.abs().sum() > 0 for g in last_layer)


def test_layerwise_phase_alone_raises_agreement_and_compiles(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences(120)))
    result = tvmopt.distill(bert_teacher(), bert_student(), text, tmp_path / "s.onnx",
                            tokenizer=word_tokenizer(tmp_path / "tok"), output_loss="mse",
                            steps=40, layerwise_steps=40, batch_size=4, lr=3e-3,
                            eval_every=40, **FAST)  # fmt: skip
    assert result.after["cosine"] > result.before["cosine"] + 0.01
    written = onnx.load(tmp_path / "s.onnx")
    feeds = {"input_ids": IDS.numpy().astype(np.int64)}
    assert_matches_ort(written, tvmopt.compile(written), feeds)


def test_layerwise_then_end_to_end_lowers_the_block_losses(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences(120)))
    names = _norms(bert_student())
    teacher = _teacher_states(names)

    def block_loss(model: onnx.ModelProto) -> float:
        student = OnnxModule(model)
        student.set_capture(names)
        student.forced = {name: teacher[name] for name in names}
        with torch.no_grad():
            return layerwise_loss({n: n for n in names}, student(input_ids=IDS), teacher).item()

    result = tvmopt.distill(bert_teacher(), bert_student(), text,
                            tokenizer=word_tokenizer(tmp_path / "tok"), output_loss="cosine",
                            steps=30, layerwise_steps=20, batch_size=4, lr=3e-3,
                            eval_every=30, **FAST)  # fmt: skip
    assert block_loss(result.model) < 0.7 * block_loss(bert_student())
    assert result.after["cosine"] > result.before["cosine"]


def test_second_phase_warms_up_afresh():
    factor = two_phases(0.1, 10, 30, first_scale=3.0)
    assert factor(0) == pytest.approx(3.0)  # round(0.1 * 10) = 1 warm-up step
    assert factor(9) < 0.1 * 3.0
    assert factor(10) == pytest.approx(0.5)  # 2 warm-up steps of the 20 left
    assert factor(11) == pytest.approx(1.0)


def test_layerwise_needs_hidden_states_of_equal_width():
    with pytest.raises(OptionError, match="layerwise_steps needs hidden states"):
        tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(20), steps=4,
                       layerwise_steps=2, **FAST)  # fmt: skip
    with pytest.raises(OptionError, match="layerwise_steps must be"):
        tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(20), steps=4,
                       layerwise_steps=5, **FAST)  # fmt: skip


@pytest.mark.slow
def test_cli_trains_layerwise_and_refuses_it_without_matched_states(tmp_path, capsys):
    from tvmopt.cli import main

    paths = {name: tmp_path / f"{name}.onnx" for name in ("t", "s", "mlp_t", "mlp_s", "out")}
    for name, model in (("t", bert_teacher()), ("s", bert_student()), ("mlp_t", mlp_teacher()),
                        ("mlp_s", mlp_student())):  # fmt: skip
        onnx.save(model, paths[name])
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences(40)))
    common = ["--quiet", "--threads", "1", "--steps", "4", "--batch-size", "4"]
    assert main(["distill", "--teacher", str(paths["t"]), "--student", str(paths["s"]),
                 "--data", str(text), "--tokenizer", str(word_tokenizer(tmp_path / "tok")),
                 "-o", str(paths["out"]), "--layerwise-steps", "2", "--loss", "mse",
                 *common]) == 0  # fmt: skip
    onnx.checker.check_model(onnx.load(paths["out"]))
    data = save_samples(tmp_path / "digits", digit_samples(24))
    refused = tmp_path / "refused.onnx"
    assert main(["distill", "--teacher", str(paths["mlp_t"]), "--student", str(paths["mlp_s"]),
                 "--data", str(data), "-o", str(refused), "--layerwise-steps", "2",
                 *common]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "layerwise_steps needs hidden states" in err
    assert not refused.exists()


def test_resume_across_the_phase_switch_gives_the_uninterrupted_student(tmp_path, monkeypatch):
    """The end-to-end phase starts with fresh AdamW moments; a run killed at the switch and
    resumed from its checkpoint ends with the student of a run never killed."""
    from tvmopt.distillation.trainer import Trainer

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences(60)))
    options = dict(tokenizer=word_tokenizer(tmp_path / "tok"), output_loss="cosine", steps=8,
                   layerwise_steps=4, batch_size=4, lr=3e-3, checkpoint_every=4, eval_every=8,
                   **FAST)  # fmt: skip
    straight = tvmopt.distill(bert_teacher(), bert_student(), text, **options)
    step = Trainer.train_step

    def killed_at_switch(self, index):
        if index == 4:
            raise KeyboardInterrupt
        return step(self, index)

    monkeypatch.setattr(Trainer, "train_step", killed_at_switch)
    with pytest.raises(KeyboardInterrupt):
        tvmopt.distill(bert_teacher(), bert_student(), text, checkpoint_dir=tmp_path / "c",
                       **options)  # fmt: skip
    monkeypatch.setattr(Trainer, "train_step", step)
    resumed = tvmopt.distill(bert_teacher(), bert_student(), text, checkpoint_dir=tmp_path / "c",
                             resume=True, **options)  # fmt: skip
    for a, b in zip(straight.model.graph.initializer, resumed.model.graph.initializer, strict=True):
        np.testing.assert_array_equal(*map(onnx.numpy_helper.to_array, (a, b)))
