"""`tvmopt distill` on the command line: it writes a student that agrees with its teacher; bad
input (other signatures, data that does not fit, an unwritable output, an op the converter lacks)
is one line on stderr and exit status 2 before any training, and nothing is written; a killed run
resumed with --resume ends with the student of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.cli import main

from .distill_models import bert_teacher, digit_samples, mlp_student, mlp_teacher, save_samples
from .helpers import assert_matches_ort, make_model


@pytest.fixture()
def files(tmp_path):
    paths = {"teacher": tmp_path / "t.onnx", "student": tmp_path / "s.onnx"}
    onnx.save(mlp_teacher(), paths["teacher"])
    onnx.save(mlp_student(), paths["student"])
    paths["data"] = save_samples(tmp_path / "data", digit_samples(48))
    paths["out"] = tmp_path / "out.onnx"
    return paths


def _args(files, *extra) -> list[str]:
    return ["distill", "--teacher", str(files["teacher"]), "--student", str(files["student"]),
            "--data", str(files["data"]), "-o", str(files["out"]), "--quiet", "--threads", "1",
            *extra]  # fmt: skip


def test_cli_writes_a_student(files, capsys):
    assert main(_args(files, "--steps", "4", "--batch-size", "8", "--measure")) == 0
    out = capsys.readouterr().out
    assert "top1_agreement" in out and "tvmopt (" in out and "student" in out
    onnx.checker.check_model(onnx.load(files["out"]))


def _fails(files, capsys, *extra) -> str:
    assert main(_args(files, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tvmopt: error:")
    assert not files["out"].exists() and not os.path.exists(f"{files['out']}.ckpt")
    return err


def test_other_signatures_fail_before_training(files, capsys, tmp_path):
    onnx.save(bert_teacher(), files["student"])
    assert "differ in their inputs" in _fails(files, capsys)


def test_data_that_does_not_fit_fails_before_training(files, capsys):
    np.savez(files["data"] / "zz_bad.npz", x=np.zeros((1, 32), np.float32))
    err = _fails(files, capsys)
    assert "zz_bad.npz" in err and "'x'" in err


def test_unwritable_output_fails_before_training(files, capsys, tmp_path):
    files["out"] = tmp_path / "missing" / "out.onnx"
    assert "output directory does not exist" in _fails(files, capsys)


def test_unsupported_op_fails_before_training(files, capsys):
    odd = make_model([helper.make_node("Det", ["x"], ["out"])], [("x", TensorProto.FLOAT, [2, 2])],
                     [("out", TensorProto.FLOAT, [])])  # fmt: skip
    onnx.save(odd, files["student"])
    onnx.save(odd, files["teacher"])
    assert "Det" in _fails(files, capsys)


def test_bad_option_is_a_usage_error(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_args(files, "--steps", "0"))
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_student(files, tmp_path):
    options = ["--steps", "150", "--batch-size", "8", "--lr", "1e-3", "--checkpoint-every", "10"]
    command = [sys.executable, "-m", "tvmopt", *_args(files, *options)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    state = tmp_path / "out.onnx.ckpt" / "distill_state.pt"
    deadline = time.monotonic() + 240
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.exists() and not files["out"].exists()  # killed mid-training
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    straight = tvmopt.distill(str(files["teacher"]), str(files["student"]), str(files["data"]),
                              steps=150, batch_size=8, lr=1e-3, threads=1, progress=False)
    written = onnx.load(files["out"])
    for a, b in zip(written.graph.initializer, straight.model.graph.initializer, strict=True):
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))


def test_missing_teacher_is_named(files, capsys, tmp_path):
    files["teacher"] = tmp_path / "nowhere.onnx"
    assert "teacher" in _fails(files, capsys)


def test_drop_layers_makes_the_student_from_the_teacher(tmp_path, capsys):
    from tvmopt.pruning.structured import find_layers

    from .distill_models import sentences, word_tokenizer

    teacher, text, out = tmp_path / "t.onnx", tmp_path / "corpus.txt", tmp_path / "s.onnx"
    onnx.save(bert_teacher(), teacher)
    text.write_text("\n".join(sentences(60)))
    args = ["distill", "--teacher", teacher, "--drop-layers", "1", "--data", text, "--tokenizer",
            word_tokenizer(tmp_path / "tok"), "-o", out, "--loss", "mse", "--steps", "4",
            "--batch-size", "4", "--eval-every", "4", "--quiet", "--threads", "1"]  # fmt: skip
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    student = onnx.load(out)
    assert list(find_layers(student.graph)) == [0]
    feeds = {"input_ids": np.array([[3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0, 0]], dtype=np.int64)}
    assert_matches_ort(student, tvmopt.compile(student), feeds)


def test_student_and_drop_layers_exclude_each_other(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_args(files, "--drop-layers", "1"))
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
