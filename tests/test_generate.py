"""A GPT-2-style decoder with a KV cache: one library (past compiled from 0) serves the prompt
pass and every decode step and matches ONNX Runtime; greedy generation gives ONNX Runtime's
greedy tokens; the cache stays in tvm tensors; generations past the compiled limits, and models
that are not decoders, are refused with one line."""

import dataclasses

import numpy as np
import onnx
import pytest

import tvmopt
from tvmopt.dims import DimRange, parse_range
from tvmopt.model import CompiledModel

from .helpers import assert_matches_ort, ort_session, relu_model
from .test_cli import assert_fails_cleanly, cli

torch = pytest.importorskip("torch")

from tvmopt.benchmark.nets import gpt2  # noqa: E402

CONFIG = gpt2.TINY  # 2 layers, hidden 64, 4 heads, vocab 250, 128 positions
MAX_SEQ, MAX_PAST = 16, CONFIG.max_positions - 1  # the last position a past of 127 + 1 reaches
PROMPT = [7, 3, 99, 42, 5]
PAST_NAMES = gpt2.input_names(CONFIG)[1:]


@pytest.fixture(scope="module")
def decoder() -> onnx.ModelProto:
    return gpt2.export(gpt2.seeded(CONFIG, std=0.2))


@pytest.fixture(scope="module")
def compiled(decoder):
    return tvmopt.compile(decoder, dims={"seq": (1, MAX_SEQ), "past": (0, MAX_PAST)})


@pytest.fixture(scope="module")
def library(decoder, tmp_path_factory):
    """The library as the command line compiles it, the past's range from 0."""
    folder = tmp_path_factory.mktemp("decoder")
    onnx.save(decoder, folder / "decoder.onnx")
    library = folder / "decoder.so"
    dims = ["--dim", f"seq=1..{MAX_SEQ}", "--dim", f"past=0..{MAX_PAST}"]
    status = tvmopt.cli.main(["compile", str(folder / "decoder.onnx"), "-o", str(library), *dims])
    assert status == 0 and tvmopt.load(library).metadata.dims["past"] == [0, MAX_PAST]
    return library


def feeds(seq: int, past: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    inputs = {"input_ids": rng.integers(0, CONFIG.vocab, (1, seq)).astype(np.int64)}
    shape = (1, CONFIG.heads, past, CONFIG.head_dim)
    return inputs | {name: rng.standard_normal(shape).astype(np.float32) for name in PAST_NAMES}


def ort_generate(model, prompt, steps, pick=lambda logits: int(np.argmax(logits))):
    """The reference loop: ONNX Runtime, its present outputs fed back as past."""
    session, tokens = ort_session(model), []
    inputs = feeds(0, 0) | {"input_ids": np.array([prompt], np.int64)}
    for _ in range(steps):
        logits, *presents = session.run(None, inputs)
        tokens.append(pick(logits[0, -1]))
        inputs = {"input_ids": np.array([[tokens[-1]]], np.int64)}
        inputs |= dict(zip(PAST_NAMES, presents, strict=True))
    return tokens


def test_signature_keeps_past_symbolic_from_zero(compiled):
    assert compiled.metadata.dims == {"batch": [1, None], "seq": [1, MAX_SEQ], "past": [0, 127]}
    assert compiled.inputs[1].shape == ("batch", CONFIG.heads, "past", CONFIG.head_dim)


@pytest.mark.parametrize("seq, past", [(5, 0), (MAX_SEQ, 0), (1, 5), (1, MAX_PAST), (3, 9)])
def test_prompt_pass_and_steps_match_onnxruntime(decoder, compiled, seq, past):
    assert_matches_ort(decoder, compiled, feeds(seq, past))


def test_greedy_tokens_are_onnxruntimes(decoder, compiled):
    generation = compiled.generate(PROMPT, 20)
    assert list(generation.tokens) == ort_generate(decoder, PROMPT, 20)
    assert len(set(generation.tokens)) > 3  # the model does not just repeat one token
    assert generation.prompt_ids == tuple(PROMPT) and len(generation.step_ms) == 19


def test_each_step_feeds_back_the_tensors_the_last_returned(compiled, monkeypatch):
    calls, run_tensors = [], CompiledModel.run_tensors

    def spy(self, tensors):
        outputs = run_tensors(self, tensors)
        calls.append((list(tensors), outputs))
        return outputs

    monkeypatch.setattr(CompiledModel, "run_tensors", spy)
    monkeypatch.setattr(CompiledModel, "run", lambda *_: pytest.fail("went through numpy"))
    compiled.generate(PROMPT, 4)
    assert len(calls) == 4
    for (_, outputs), (inputs, _) in zip(calls, calls[1:], strict=False):
        assert all(past is present for past, present in zip(inputs[1:], outputs[1:], strict=True))
    assert all(isinstance(t, tvmopt._tvm.tvm.runtime.Tensor) for t in calls[-1][1])


@pytest.mark.parametrize("strategy, setting", [("top_k", {"k": 5}), ("top_p", {"p": 0.8})])
def test_sampled_tokens_come_from_the_allowed_set(decoder, compiled, strategy, setting):
    tokens = compiled.generate(PROMPT, 12, strategy=strategy, seed=3, **setting).tokens
    assert compiled.generate(PROMPT, 12, strategy=strategy, seed=3, **setting).tokens == tokens
    allowed = iter(tokens)  # replay ONNX Runtime on the sampled tokens: each was allowed there

    def check(logits):
        token = next(allowed)
        order = np.argsort(-logits)
        mass = np.cumsum(np.exp(logits[order] - logits.max()) / np.exp(logits - logits.max()).sum())
        count = setting["k"] if "k" in setting else int(np.searchsorted(mass, setting["p"])) + 1
        assert token in order[:count], (token, order[:count])
        return token

    ort_generate(decoder, PROMPT, 12, check)


def test_one_candidate_is_greedy(compiled):
    greedy = compiled.generate(PROMPT, 8).tokens
    assert compiled.generate(PROMPT, 8, strategy="top_k", k=1, seed=9).tokens == greedy
    assert compiled.generate(PROMPT, 8, strategy="top_p", p=1e-6, seed=9).tokens == greedy


@pytest.mark.parametrize(
    "prompt, new, fragment",
    [
        ([1] * 16, 114, "a prompt of 16 tokens + 114 new tokens needs a past of 128 tokens; the "
         "model was compiled for a past of up to 127 (prompt + new tokens <= 129)"),
        ([1] * 17, 1, "the prompt has 17 tokens; the model was compiled for 1..16 tokens a pass"),
        ([], 1, "the prompt is empty"),
        ([1, 250], 1, "prompt token id 250 is outside the vocabulary 0..249"),
        ([1], 0, "max_new_tokens must be >= 1, got 0"),
        ([[1, 2], [3, 4]], 1, "generate takes one prompt (batch 1), got ids of shape (2, 2)"),
        ([1.5, 2], 1, "prompt token ids must be integers, got float64"),
    ],
)  # fmt: skip
def test_generation_past_the_limits_is_refused(compiled, prompt, new, fragment):
    with pytest.raises(tvmopt.InputError) as err:
        compiled.generate(prompt, new)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_prompt_may_be_input_ids_of_batch_one(compiled):
    ids = np.array([PROMPT], np.int64)
    assert compiled.generate(ids, 4).tokens == compiled.generate(PROMPT, 4).tokens


def test_the_largest_generation_that_fits_runs(compiled):
    assert len(compiled.generate([1] * 16, 113).tokens) == 113  # a past of 127 on the last step


def test_a_model_that_is_not_a_decoder_is_refused():
    model = tvmopt.compile(relu_model())
    with pytest.raises(tvmopt.InputError, match="generate needs a decoder with inputs input_ids"):
        model.generate([1, 2], 3)


def test_a_past_compiled_from_one_is_refused(compiled):
    metadata = dataclasses.replace(compiled.metadata, dims={**compiled.metadata.dims,
                                                            "past": [1, 127]})  # fmt: skip
    model = CompiledModel(compiled._module, metadata)
    with pytest.raises(
        tvmopt.InputError,
        match="the prompt pass needs an empty past, but the "
        "model was compiled for a past of 1..127; compile with --dim past=0..N",
    ):
        model.generate(PROMPT, 2)  # fmt: skip


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"strategy": "beam"}, "strategy must be one of greedy, top_k, top_p"),
        ({"strategy": "top_k"}, "top_k sampling needs k"),
        ({"strategy": "top_p", "p": 1.5}, "top_p sampling needs p in (0, 1]"),
        ({"temperature": 0}, "temperature must be > 0"),
    ],
)
def test_bad_sampling_options_are_refused(compiled, options, fragment):
    with pytest.raises(tvmopt.OptionError) as err:
        compiled.generate(PROMPT, 2, **options)
    assert fragment in str(err.value)


def test_a_range_may_start_at_zero_but_not_below():
    assert parse_range("0..4") == DimRange(0, 4) and DimRange(0, 4).holds(0)
    assert not DimRange().holds(0)  # an undeclared dim still starts at 1
    with pytest.raises(tvmopt.OptionError, match="0 <= lo <= hi, got -1..4"):
        parse_range("-1..4")


def test_cli_generates_onnxruntimes_greedy_tokens(capsys, decoder, library):
    status, out, err = cli(capsys, "generate", library, "--prompt-ids", "7,3,99,42,5",
                           "--max-new-tokens", 6)  # fmt: skip
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "prompt: 7 3 99 42 5"
    assert lines[1] == "tokens: " + " ".join(map(str, ort_generate(decoder, PROMPT, 6)))
    assert lines[2].startswith("latency: prompt pass (5 tokens) ")
    assert "per new token mean " in lines[2] and "(5 steps)" in lines[2]


def test_cli_samples_with_a_seed(capsys, library):
    args = ("generate", library, "--prompt-ids", "1,2", "--max-new-tokens", 5, "--top-p", "0.9",
            "--seed", 4, "--temperature", "0.8")  # fmt: skip
    first, second = cli(capsys, *args), cli(capsys, *args)
    assert first[0] == 0 and first[1].splitlines()[1] == second[1].splitlines()[1]


def test_cli_over_the_cache_exits_2(capsys, library):
    status, _, err = cli(capsys, "generate", library, "--prompt-ids", "1,2,3",
                         "--max-new-tokens", 200)  # fmt: skip
    assert_fails_cleanly(status, err, "needs a past of 201 tokens; the model was compiled for a "
                         "past of up to 127")  # fmt: skip


def test_cli_not_a_decoder_exits_2(capsys, tmp_path):
    path = tmp_path / "relu.so"
    tvmopt.compile(relu_model()).export(path)
    status, _, err = cli(capsys, "generate", path, "--prompt-ids", "1")
    assert_fails_cleanly(status, err, "generate needs a decoder")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--prompt-ids", "1,x"], "expected token ids such as 1,2,3, got '1,x'"),
        (["--prompt-ids", "1", "--top-k", "2", "--top-p", "0.5"], "not allowed with argument"),
        (["--prompt-ids", "1", "--top-p", "2"], "expected a probability in (0, 1], got '2'"),
    ],
)
def test_cli_bad_arguments_exit_2(capsys, args, fragment):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error, before any import
        tvmopt.cli.main(["generate", "model.so", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and fragment in err[0]
