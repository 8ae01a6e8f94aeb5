"""The "activation" criterion and least-squares reconstruction of structured pruning: units that
never contribute on the sample inputs go first, however large their weights, and the refitted
projection brings the pruned output closer to the unpruned one than slicing alone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from tvmopt.benchmark.models import to_onnx_bytes
from tvmopt.errors import InputError
from tvmopt.pruning.structured import prune_structured

from .helpers import ort_outputs, save_sample_sets
from .test_prune_structured import HEAD_DIM, HIDDEN, bert, token_ids

WIDTH, NEURONS, SEQ = 16, 32, 8
SILENT = np.arange(0, NEURONS, 2)  # every other neuron: never fires, but has the largest weights


def ffn_model(silent: bool) -> onnx.ModelProto:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(WIDTH, NEURONS), nn.ReLU(), nn.Linear(NEURONS, WIDTH))
    if silent:
        with torch.no_grad():
            module[0].weight[SILENT] *= 10
            module[0].bias[SILENT] = -1e3  # ReLU(x w - 1000) = 0 on any input of these
            module[2].weight[:, SILENT] *= 10
    return onnx.load_from_string(to_onnx_bytes(module.eval(), (torch.zeros(1, SEQ, WIDTH),)))


def float_samples(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"input": rng.standard_normal((1, SEQ, WIDTH)).astype(np.float32)}
            for _ in range(count)]  # fmt: skip


def run(model: onnx.ModelProto, samples: list[dict]) -> np.ndarray:
    return np.concatenate([next(iter(ort_outputs(model, s).values())) for s in samples])


def _input_name(model: onnx.ModelProto) -> str:
    return model.graph.input[0].name


def _samples_for(model, count: int, seed: int) -> list[dict]:
    return [{_input_name(model): s["input"]} for s in float_samples(count, seed)]


def test_activation_drops_silent_neurons_that_weight_norms_keep():
    model = ffn_model(silent=True)
    samples, held = _samples_for(model, 32, 0), _samples_for(model, 16, 1)
    by_norm = prune_structured(model, ffn=0.5).model
    by_activation = prune_structured(model, ffn=0.5, criterion="activation",
                                     samples=samples).model  # fmt: skip
    np.testing.assert_allclose(run(by_activation, held), run(model, held), atol=1e-5)
    assert np.abs(run(by_norm, held) - run(model, held)).max() > 0.1


def test_activation_drops_heads_whose_values_are_zero():
    def silence_values(module):  # heads 1 and 2 read zero values; their W_o rows grow
        for layer in module.layers:
            for head in (1, 2):
                rows = slice(2 * HIDDEN + head * HEAD_DIM, 2 * HIDDEN + (head + 1) * HEAD_DIM)
                layer.attention.qkv.weight[rows] = 0
                layer.attention.qkv.bias[rows] = 0
                layer.attention.out.weight[:, head * HEAD_DIM : (head + 1) * HEAD_DIM] *= 10

    model = bert(silence_values)
    feeds = [{_input_name(model): token_ids().numpy()}]
    pruned = prune_structured(model, heads=0.5, criterion="activation", samples=feeds).model
    np.testing.assert_allclose(run(pruned, feeds), run(model, feeds), atol=1e-4)
    by_norm = prune_structured(model, heads=0.5).model
    assert np.abs(run(by_norm, feeds) - run(model, feeds)).max() > 1e-2


@pytest.mark.parametrize("criterion", ["l2", "activation"])
def test_reconstruct_brings_held_out_outputs_closer(criterion):
    model = ffn_model(silent=False)
    samples, held = _samples_for(model, 64, 0), _samples_for(model, 16, 1)
    options = dict(ffn=0.5, criterion=criterion, samples=samples)
    sliced = prune_structured(model, **options).model
    refit = prune_structured(model, reconstruct=True, **options).model
    assert refit.graph.input[0].name == model.graph.input[0].name
    expected = run(model, held)
    sliced_error = np.abs(run(sliced, held) - expected).mean()
    refit_error = np.abs(run(refit, held) - expected).mean()
    assert refit_error < 0.8 * sliced_error


@pytest.mark.parametrize(
    "options, message",
    [
        ({"ffn": 0.5, "criterion": "activation"}, 'criterion "activation" needs samples'),
        ({"ffn": 0.5, "reconstruct": True, "samples": []}, "a non-empty list of input dicts"),
        ({"channels": 0.5, "criterion": "activation", "samples": [{}]}, "not channels"),
    ],
)
def test_bad_activation_options_get_one_line(options, message):
    with pytest.raises(InputError) as error:
        prune_structured(bert(), **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_activation_and_reconstruct_prune_as_the_api_does(tmp_path, capfd):
    from tvmopt.cli import main

    model = ffn_model(silent=True)
    source, output, folder = tmp_path / "ffn.onnx", tmp_path / "small.onnx", tmp_path / "samples"
    onnx.save(model, source)
    samples = _samples_for(model, 8, 0)
    save_sample_sets(folder, samples)
    args = ["prune", source, "-o", output, "--ffn", "0.5", "--norm", "activation",
            "--reconstruct", "--samples", folder]  # fmt: skip
    assert main([str(a) for a in args]) == 0, capfd.readouterr().err
    expected = prune_structured(model, ffn=0.5, criterion="activation", samples=samples,
                                reconstruct=True).model  # fmt: skip
    assert onnx.load(output).graph.initializer == expected.graph.initializer


def test_cli_samples_that_do_not_fit_the_inputs_are_one_line(tmp_path, capfd):
    from tvmopt.cli import main

    source, folder = tmp_path / "ffn.onnx", tmp_path / "samples"
    onnx.save(ffn_model(silent=False), source)
    folder.mkdir()
    np.savez(folder / "a.npz", other=np.zeros((1, SEQ, WIDTH), np.float32))
    args = ["prune", source, "-o", tmp_path / "out.onnx", "--ffn", "0.5", "--norm", "activation",
            "--samples", folder]  # fmt: skip
    status = main([str(a) for a in args])
    err = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "a.npz: unknown input 'other'" in err[0], err
    assert not (tmp_path / "out.onnx").exists()
