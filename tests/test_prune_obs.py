"""The "obs" criterion of structured pruning: greedy least-squares removal (obs.py). Its refit
equals the plain least-squares refit of the units it keeps, it lets one of two duplicate units go
where scoring each unit alone keeps both, its intercept moves the dropped units' mean into the
bias, and on ONNX models (an FFN, a BERT's heads) it ends closer to the unpruned outputs than
"activation" + reconstruct."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tvmopt.pruning.structured import obs, prune_structured
from tvmopt.pruning.structured.activations import contribution, refit

from .helpers import save_sample_sets
from .test_prune_activation import _input_name, _samples_for, ffn_model, run
from .test_prune_structured import bert, token_ids


def _error(x, weight, rows, fitted, shift=0.0):
    return np.abs(x @ weight - (x[:, rows] @ fitted + shift)).mean()


def test_refit_is_the_least_squares_fit_of_the_kept_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 24)) @ rng.normal(size=(24, 24))
    weight = rng.normal(size=(24, 5))
    kept, fitted = obs.prune(x, weight, units=6, kept_units=3, ridge=1e-9)
    rows = (kept[:, None] * 4 + np.arange(4)).reshape(-1)
    assert list(kept) == sorted(kept) and len(kept) == 3
    np.testing.assert_allclose(fitted, refit(x, weight, rows, ridge=1e-9), atol=1e-6)


def test_one_of_two_duplicate_units_goes_first():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(400, 3))
    x = np.concatenate([base[:, :1], base[:, :1], base[:, 1:]], axis=1)  # units 0 and 1 alike
    weight = np.array([[3.0], [3.0], [1.0], [0.5]])
    kept, fitted = obs.prune(x, weight, units=4, kept_units=2)
    assert 2 in kept and len({0, 1} & set(kept)) == 1
    by_score = np.sort(np.argsort(contribution(x, weight, 4))[2:])  # keeps both copies
    assert list(by_score) == [0, 1]
    assert _error(x, weight, kept, fitted) < 0.5 * _error(x, weight, by_score,
                                                          refit(x, weight, by_score))


def test_intercept_takes_the_dropped_units_mean():
    rng = np.random.default_rng(2)
    x = np.abs(rng.normal(size=(600, 8)))  # ReLU-like: every mean positive
    weight = rng.normal(size=(8, 3))
    kept, fitted, delta = obs.choose(x, weight, 8, 4, bias=True)
    plain_kept, plain = obs.prune(x, weight, 8, 4)
    assert _error(x, weight, kept, fitted, delta) < 0.9 * _error(x, weight, plain_kept, plain)
    np.testing.assert_allclose((x[:, kept] @ fitted + delta).mean(0), (x @ weight).mean(0),
                               atol=1e-6)  # fmt: skip


def _held_out_error(model, pruned, held):
    return np.abs(run(pruned, held) - run(model, held)).mean()


def test_obs_ffn_beats_activation_with_reconstruct():
    model = ffn_model(silent=False)
    samples, held = _samples_for(model, 64, 0), _samples_for(model, 16, 1)
    by_obs = prune_structured(model, ffn=0.5, criterion="obs", samples=samples).model
    by_activation = prune_structured(model, ffn=0.5, criterion="activation", samples=samples,
                                     reconstruct=True).model  # fmt: skip
    onnx.checker.check_model(by_obs)
    assert _held_out_error(model, by_obs, held) < _held_out_error(model, by_activation, held)


def test_obs_heads_beat_activation_with_reconstruct():
    model = bert()
    rng = np.random.default_rng(3)
    feeds = [{_input_name(model): rng.integers(0, 50, token_ids().shape)} for _ in range(24)]
    train, held = feeds[:16], feeds[16:]
    by_obs = prune_structured(model, heads=0.5, criterion="obs", samples=train).model
    by_activation = prune_structured(model, heads=0.5, criterion="activation", samples=train,
                                     reconstruct=True).model  # fmt: skip
    assert _held_out_error(model, by_obs, held) < _held_out_error(model, by_activation, held)


@pytest.mark.parametrize("samples, message", [(None, 'criterion "obs" needs samples'),
                                              ([], "a non-empty list of input dicts")])
def test_obs_without_samples_is_one_line(samples, message):
    from tvmopt.errors import InputError

    with pytest.raises(InputError) as error:
        prune_structured(bert(), heads=0.5, criterion="obs", samples=samples)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_norm_obs_prunes_as_the_api_does(tmp_path, capfd):
    from tvmopt.cli import main

    model = ffn_model(silent=False)
    source, output, folder = tmp_path / "ffn.onnx", tmp_path / "small.onnx", tmp_path / "samples"
    onnx.save(model, source)
    samples = _samples_for(model, 8, 0)
    save_sample_sets(folder, samples)
    args = ["prune", source, "-o", output, "--ffn", "0.5", "--norm", "obs", "--samples", folder]
    assert main([str(a) for a in args]) == 0, capfd.readouterr().err
    expected = prune_structured(model, ffn=0.5, criterion="obs", samples=samples).model
    assert onnx.load(output).graph.initializer == expected.graph.initializer
