"""Distillation (tvmopt.distill): the ONNX -> torch converter matches ONNX Runtime, a pruned
student gets closer to its teacher on held-out inputs, the written student compiles with tvmopt
and matches ONNX Runtime, runs are deterministic and resume exactly where a kill left them."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import tvmopt
from tvmopt.distillation.converter import OnnxModule, write_back

from .distill_models import (
    bert_student,
    bert_teacher,
    digit_samples,
    mlp_student,
    mlp_teacher,
    sentences,
    word_tokenizer,
)
from .helpers import assert_matches_ort, ort_outputs

FAST = dict(threads=1, progress=False)


def _torch_outputs(model: onnx.ModelProto, feeds: dict) -> dict:
    module = OnnxModule(model)
    with torch.no_grad():
        out = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("build", [mlp_teacher, mlp_student, bert_teacher, bert_student])
def test_converter_matches_onnxruntime(build):
    model = build()
    name = model.graph.input[0].name
    feeds = {name: digit_samples(3)[0]["x"][:, :64]} if name == "x" else {
        name: np.arange(1, 13, dtype=np.int64)[None] % 20}  # fmt: skip
    ours, ort = _torch_outputs(model, feeds), ort_outputs(model, feeds)
    for key, expected in ort.items():
        np.testing.assert_allclose(ours[key], expected, rtol=1e-4, atol=1e-5)


def test_write_back_keeps_the_graph_and_carries_the_weights():
    model = mlp_student()
    module = OnnxModule(model)
    with torch.no_grad():
        for p in module.weights:
            p.mul_(0.5)
    out = write_back(model, module)
    assert [n.op_type for n in out.graph.node] == [n.op_type for n in model.graph.node]
    halved = {i.name: onnx.numpy_helper.to_array(i) for i in out.graph.initializer}
    for init in model.graph.initializer:
        np.testing.assert_allclose(halved[init.name], onnx.numpy_helper.to_array(init) * 0.5)


def test_mlp_student_gets_closer_and_compiles(tmp_path):
    samples = digit_samples(400)
    result = tvmopt.distill(mlp_teacher(), mlp_student(), samples, tmp_path / "s.onnx",
                            steps=120, batch_size=32, lr=3e-3, eval_every=60, **FAST)  # fmt: skip
    assert result.after["top1_agreement"] > result.before["top1_agreement"]
    assert result.after["top1_agreement"] >= 0.95
    written = onnx.load(tmp_path / "s.onnx")
    feeds = digit_samples(1, start=1000)[0]
    assert_matches_ort(written, tvmopt.compile(written), feeds)


def test_bert_student_learns_from_text_and_compiles(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences(120)))
    tokenizer = word_tokenizer(tmp_path / "tok")
    result = tvmopt.distill(bert_teacher(), bert_student(), text, tmp_path / "s.onnx",
                            tokenizer=tokenizer, output_loss="mse", hidden_weight=1.0, steps=40,
                            batch_size=4, lr=3e-3, eval_every=40, attention_weight=1.0,
                            **FAST)  # fmt: skip
    assert result.after["cosine"] > result.before["cosine"] + 0.01
    written = onnx.load(tmp_path / "s.onnx")
    feeds = {"input_ids": np.array([[3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0]], dtype=np.int64)}
    assert_matches_ort(written, tvmopt.compile(written), feeds)


def _same_weights(a: onnx.ModelProto, b: onnx.ModelProto) -> bool:
    pairs = zip(a.graph.initializer, b.graph.initializer, strict=True)
    return all(np.array_equal(*map(onnx.numpy_helper.to_array, pair)) for pair in pairs)


def test_same_seed_same_student_other_seed_another():
    def run(seed):
        return tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64), steps=6,
                              batch_size=8, lr=1e-3, seed=seed, **FAST).model  # fmt: skip

    first, again, other = run(0), run(0), run(1)
    assert _same_weights(first, again)
    assert not _same_weights(first, other)


def test_resume_after_an_interruption_gives_the_uninterrupted_student(tmp_path, monkeypatch):
    from tvmopt.distillation.trainer import Trainer

    options = dict(steps=12, batch_size=8, lr=1e-3, checkpoint_every=4, eval_every=6, **FAST)
    straight = tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64), **options)
    step = Trainer.train_step

    def killed_at_10(self, index):
        if index == 10:
            raise KeyboardInterrupt
        return step(self, index)

    monkeypatch.setattr(Trainer, "train_step", killed_at_10)
    with pytest.raises(KeyboardInterrupt):
        tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64), checkpoint_dir=tmp_path,
                       **options)  # fmt: skip
    monkeypatch.setattr(Trainer, "train_step", step)
    resumed = tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(64),
                             checkpoint_dir=tmp_path, resume=True, **options)  # fmt: skip
    assert _same_weights(straight.model, resumed.model)


def test_fake_quant_student_keeps_agreement_in_int8(tmp_path):
    samples = digit_samples(300)
    result = tvmopt.distill(mlp_teacher(), mlp_student(), samples, steps=80, batch_size=32,
                            lr=3e-3, fake_quant=True, **FAST)  # fmt: skip
    compiled = tvmopt.compile(result.model, quantize="int8", calib=digit_samples(32))
    teacher = OnnxModule(mlp_teacher())
    held = digit_samples(100, start=1200)
    agree = []
    for feeds in held:
        with torch.no_grad():
            expected = teacher(x=torch.from_numpy(feeds["x"]))["out"].argmax(-1).item()
        agree.append(int(np.argmax(next(iter(compiled.run(feeds).values())))) == expected)
    assert np.mean(agree) >= 0.9


def test_token_batches_pad_to_the_longest_with_zeros():
    from tvmopt.distillation.data import batches

    short = {"ids": np.array([[5, 6]]), "mask": np.array([[1, 1]])}
    long = {"ids": np.array([[7, 8, 9]]), "mask": np.array([[1, 1, 1]])}
    (batch,) = batches([short, long], stack=True)
    np.testing.assert_array_equal(batch["ids"], [[5, 6, 0], [7, 8, 9]])
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 0], [1, 1, 1]])


def test_hidden_states_of_other_widths_go_through_a_learned_projection(monkeypatch):
    from tvmopt.distillation import trainer

    relu = next(n.output[0] for n in mlp_student().graph.node if n.op_type == "Relu")
    made, original = [], trainer.Projections

    def recorded(widths):
        made.append(widths)
        return original(widths)

    monkeypatch.setattr(trainer, "Projections", recorded)
    result = tvmopt.distill(mlp_teacher(), mlp_student(), digit_samples(200), steps=40,
                            batch_size=32, lr=3e-3, hidden={relu: relu}, hidden_weight=0.1,
                            **FAST)  # fmt: skip
    assert made == [{relu: (32, 128)}]  # the student keeps 32 of the teacher's 128 neurons
    assert result.after["top1_agreement"] > result.before["top1_agreement"]
