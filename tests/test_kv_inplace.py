"""kv_cache="in-place": a GPT-2-style decoder's past_* concats become preallocated caches
written in place (passes/kv_cache_in_place.py), read by attention's matmuls where they lie
(backends/llvm/cache_rows_into_matmul.py). The prompt pass and single-token steps match ONNX
Runtime, greedy generation gives its tokens, the same cache tensors serve every step, and a
past over the capacity is refused in one line; models without the pattern keep the old contract."""

import numpy as np
import onnx
import pytest

import tvmopt
from tvmopt.frontend import onnx as onnx_frontend
from tvmopt.kv_cache import KV_CACHE_RECORD
from tvmopt.model import CompiledModel
from tvmopt.reference import FP32_TOLERANCE, max_relative_error

from .helpers import ort_session, relu_model
from .test_cli import assert_fails_cleanly, cli

torch = pytest.importorskip("torch")

from tvmopt.benchmark.nets import gpt2  # noqa: E402

CONFIG = gpt2.TINY  # 2 layers, hidden 64, 4 heads, vocab 250, 128 positions
MAX_SEQ, CAPACITY = 16, CONFIG.max_positions  # past 0..127: 128 rows
DIMS = {"seq": (1, MAX_SEQ), "past": (0, CAPACITY - 1)}
PROMPT = [7, 3, 99, 42, 5]
PAST_NAMES = gpt2.input_names(CONFIG)[1:]


@pytest.fixture(scope="module")
def decoder() -> onnx.ModelProto:
    return gpt2.export(gpt2.seeded(CONFIG, std=0.2))


@pytest.fixture(scope="module")
def in_place(decoder):
    return tvmopt.compile(decoder, dims=DIMS, kv_cache="in-place")


def random_cache(past: int, seed: int) -> dict:
    """Each past input: `past` random rows, as ONNX Runtime takes them."""
    rng = np.random.default_rng(seed)
    shape = (1, CONFIG.heads, past, CONFIG.head_dim)
    return {name: rng.standard_normal(shape).astype(np.float32) for name in PAST_NAMES}


def at_capacity(past_rows: np.ndarray) -> np.ndarray:
    """The rows in a cache of the full capacity, the rest filled with garbage nobody may read."""
    cache = np.full((1, CONFIG.heads, CAPACITY, CONFIG.head_dim), 1e30, np.float32)
    cache[:, :, : past_rows.shape[2]] = past_rows
    return cache


def ort_generate(model, prompt, steps):
    session, tokens = ort_session(model), []
    inputs = random_cache(0, 0) | {"input_ids": np.array([prompt], np.int64)}
    for _ in range(steps):
        logits, *presents = session.run(None, inputs)
        tokens.append(int(np.argmax(logits[0, -1])))
        inputs = {"input_ids": np.array([[tokens[-1]]], np.int64)}
        inputs |= dict(zip(PAST_NAMES, presents, strict=True))
    return tokens


def test_signature_and_record(in_place):
    names = [spec.name for spec in in_place.inputs]
    assert names == ["input_ids", *PAST_NAMES, "past_length"]
    assert in_place.inputs[1].shape == ("batch", CONFIG.heads, CAPACITY, CONFIG.head_dim)
    assert in_place.outputs[1].shape == in_place.inputs[1].shape
    assert in_place.metadata.extra[KV_CACHE_RECORD] == {
        "mode": "in-place", "capacity": CAPACITY, "position": "past_length",
        "caches": PAST_NAMES}  # fmt: skip


def test_no_kernel_copies_the_cache(in_place):
    kernels = in_place.metadata.extra["kernels"]
    assert "kv_cache_write_rows" in kernels
    assert not any("concat" in name for name in kernels)
    # every slice left is the LM head's, none reads a cache (the rewrite's slices fold away)
    assert not any(name.startswith("strided_slice") for name in kernels), sorted(kernels)


@pytest.mark.parametrize("seq, past", [(5, 0), (MAX_SEQ, 0), (1, 5), (1, CAPACITY - 1), (3, 9)])
def test_prompt_pass_and_steps_match_onnxruntime(decoder, in_place, seq, past):
    rng = np.random.default_rng(seq + past)
    ids = rng.integers(0, CONFIG.vocab, (1, seq)).astype(np.int64)
    pasts = random_cache(past, seed=past)
    expected = ort_session(decoder).run(None, {"input_ids": ids, **pasts})
    caches = [in_place.tensor(at_capacity(pasts[name])) for name in PAST_NAMES]
    position = in_place.tensor(np.array([past], np.int64))
    logits, *presents = in_place.run_tensors([in_place.tensor(ids), *caches, position])
    assert max_relative_error(logits.numpy(), expected[0]) <= FP32_TOLERANCE
    for cache, present, ort_present in zip(caches, presents, expected[1:], strict=True):
        assert present.same_as(cache)  # written in place, returned as is
        rows = cache.numpy()
        assert max_relative_error(rows[:, :, : past + seq], ort_present) <= FP32_TOLERANCE
        assert (rows[:, :, past + seq :] == 1e30).all()  # rows past the new ones untouched


def test_greedy_tokens_are_onnxruntimes(decoder, in_place):
    generation = in_place.generate(PROMPT, 20)
    assert list(generation.tokens) == ort_generate(decoder, PROMPT, 20)
    assert len(set(generation.tokens)) > 3 and len(generation.step_ms) == 19


def test_every_step_takes_the_same_caches_and_the_filled_rows(in_place, monkeypatch):
    calls, run_tensors = [], CompiledModel.run_tensors

    def spy(self, tensors):
        calls.append(list(tensors))
        return run_tensors(self, tensors)

    monkeypatch.setattr(CompiledModel, "run_tensors", spy)
    in_place.generate(PROMPT, 4)
    assert [int(call[-1].numpy()[0]) for call in calls] == [0, 5, 6, 7]
    first = calls[0][1:-1]
    assert all(t.shape[2] == CAPACITY for t in first)
    assert all(all(a is b for a, b in zip(first, c[1:-1], strict=True)) for c in calls[1:])


def test_the_largest_generation_that_fits_runs(in_place):
    assert len(in_place.generate([1] * 16, 113).tokens) == 113  # the last step writes row 127


def test_generation_over_the_capacity_is_refused(in_place):
    with pytest.raises(tvmopt.InputError) as err:
        in_place.generate([1] * 16, 114)
    message = str(err.value)
    assert "needs a past of 128 tokens; the model was compiled for a past of up to 127" in message
    assert "\n" not in message


@pytest.mark.parametrize("past, seq", [(126, 3), (CAPACITY, 1), (-1, 1)])
def test_a_run_past_the_capacity_stops_before_writing(in_place, past, seq):
    caches = [in_place.tensor(np.zeros((1, 4, CAPACITY, 16), np.float32)) for _ in PAST_NAMES]
    ids = in_place.tensor(np.ones((1, seq), np.int64))
    with pytest.raises(RuntimeError, match="past_length \\+ the new tokens do not fit the KV "
                       "cache's rows"):  # fmt: skip
        in_place.run_tensors([ids, *caches, in_place.tensor(np.array([past], np.int64))])
    assert not any(cache.numpy().any() for cache in caches)


@pytest.mark.parametrize("past, seq", [(126, 3), (CAPACITY, 1), (-1, 1)])
def test_a_numpy_run_past_the_capacity_is_one_line(in_place, past, seq):
    caches = {name: np.zeros((1, 4, CAPACITY, 16), np.float32) for name in PAST_NAMES}
    feeds = {"input_ids": np.ones((1, seq), np.int64), **caches,
             "past_length": np.array([past], np.int64)}  # fmt: skip
    with pytest.raises(tvmopt.InputError) as err:
        in_place.run(feeds)
    assert f"past_length = {past} with {seq} new token(s)" in str(err.value)
    assert f"0..{CAPACITY - seq}" in str(err.value) and "\n" not in str(err.value)


def test_the_rewrite_declines_where_a_past_is_read_elsewhere(decoder):
    from tvmopt.passes import kv_cache_in_place

    mod = onnx_frontend.import_model(onnx_frontend.prepare(decoder))
    assert kv_cache_in_place.rewrite(mod, CAPACITY) is not None
    assert kv_cache_in_place.rewrite(mod, CAPACITY, prefix="input_") is None  # no concat of ids
    assert kv_cache_in_place.rewrite(mod, CAPACITY, prefix="nothing") is None


def test_auto_keeps_the_old_contract_for_other_models():
    compiled = tvmopt.compile(relu_model(), kv_cache="auto")
    assert [spec.name for spec in compiled.inputs] == ["x"]
    assert KV_CACHE_RECORD not in compiled.metadata.extra


@pytest.mark.parametrize(
    "model, options, fragment",
    [
        ("relu", {"kv_cache": "in-place"}, "kv_cache='in-place' needs a decoder whose past_*"),
        ("decoder", {"kv_cache": "in-place", "dims": {"seq": (1, 4)}},
         "needs the past dim bounded from 0 (--dim past=0..N)"),
        ("relu", {"kv_cache": "paged"}, "kv_cache must be one of concat, in-place, auto, got"),
        ("decoder", {"kv_cache": "in-place", "dims": DIMS, "buckets": {"seq": [4]}},
         "kv_cache='in-place' is not built with buckets"),
    ],
)  # fmt: skip
def test_bad_kv_cache_options_are_refused(decoder, model, options, fragment):
    with pytest.raises(tvmopt.OptionError) as err:
        tvmopt.compile(relu_model() if model == "relu" else decoder, **options)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_cli_compiles_in_place_and_inspect_says_so(capsys, decoder, tmp_path):
    onnx.save(decoder, tmp_path / "decoder.onnx")
    library = tmp_path / "decoder.so"
    dims = ["--dim", f"seq=1..{MAX_SEQ}", "--dim", f"past=0..{CAPACITY - 1}"]
    status, _, err = cli(capsys, "compile", tmp_path / "decoder.onnx", "-o", library, *dims,
                         "--kv-cache", "in-place")  # fmt: skip
    assert status == 0, err
    status, out, _ = cli(capsys, "inspect", library)
    assert status == 0 and f"KV cache: in place, capacity {CAPACITY}" in out.splitlines()
    status, out, err = cli(capsys, "generate", library, "--prompt-ids", "7,3,99,42,5",
                           "--max-new-tokens", 6)  # fmt: skip
    assert status == 0, err
    assert out.splitlines()[1] == "tokens: " + " ".join(map(str, ort_generate(decoder, PROMPT, 6)))
    status, _, err = cli(capsys, "generate", library, "--prompt-ids", "1,2,3",
                         "--max-new-tokens", 200)  # fmt: skip
    assert_fails_cleanly(status, err, "needs a past of 201 tokens")


@pytest.mark.slow
def test_int4_weights_a8_in_place_gives_the_concat_builds_tokens(decoder):
    """int4-weights-a8 rounds differently from ONNX Runtime: the reference is our own concat
    build of the same weights."""
    both = [tvmopt.compile(decoder, dims=DIMS, quantize="int4-weights-a8", kv_cache=mode)
            for mode in ("concat", "in-place")]  # fmt: skip
    concat, in_place = (model.generate(PROMPT, 20).tokens for model in both)
    assert in_place == concat


def sliced_matmul(begin: int, transposed: bool):
    """main(p, cache) = p @ cache[:, :, begin:begin + n] (or q @ its transpose)."""
    from tvm import relax

    from tvmopt._tvm import tvm

    n = tvm.tirx.Var("n", "int64")
    columns = [1, 4, 1, n] if not transposed else [1, 4, 1, 16]
    p = relax.Var("p", relax.TensorType(columns, "float32"))
    rows = relax.Var("rows", relax.TensorType([n], "int64"))  # defines n for the q @ K^T case
    cache = relax.Var("cache", relax.TensorType([1, 4, CAPACITY, 16], "float32"))
    builder = relax.BlockBuilder()
    with builder.function("main", [p, cache, rows]):
        with builder.dataflow():
            kept = builder.emit(relax.op.strided_slice(cache, [2], [begin], [begin + n]))
            if transposed:
                kept = builder.emit(relax.op.permute_dims(kept, [0, 1, 3, 2]))
            out = builder.emit_output(relax.op.matmul(p, kept))
        builder.emit_func_output(out)
    return builder.get()


def op_names(mod) -> list[str]:
    from tvm import relax

    names = []
    relax.analysis.post_order_visit(mod["main"], lambda e: names.append(
        str(getattr(getattr(e, "op", None), "name", "")) or str(getattr(e, "op", ""))))
    return [name for name in names if name]


@pytest.mark.parametrize("transposed", [False, True])
def test_cache_rows_fold_into_the_matmul_only_from_row_zero(transposed):
    from tvmopt.backends.llvm.cache_rows_into_matmul import cache_rows_into_matmul

    folded = op_names(cache_rows_into_matmul(sliced_matmul(0, transposed)))
    assert "relax.call_tir" in folded
    assert "relax.strided_slice" not in folded and "relax.matmul" not in folded
    kept = op_names(cache_rows_into_matmul(sliced_matmul(1, transposed)))  # rows 1..n: no fold
    assert "relax.strided_slice" in kept and "relax.matmul" in kept
