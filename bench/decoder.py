"""Per-token decode latency of a GPT-2-small-config decoder with a KV cache: tvmopt (fp32, int8
and int4 weights) vs ONNX Runtime (fp32, and MatMulNBits int4), on the same ONNX file.

The decoder (tvmopt.benchmark.nets.gpt2: vocab 50257, hidden 768, 12 heads, 12 layers by
default, 1024 positions, seeded weights) is exported once with dynamic batch, seq and past
axes and compiled once per weight format with symbolic dims (seq 1..64, past 0..1023):
float32, int8 weights and int4 weights (`quantize="int8-weights"|"int4-weights"`, groups of
--group-size). ONNX Runtime runs the float32 file and that file through its own
MatMulNBitsQuantizer (int4, the same groups, zero points) at accuracy level 0 (float32
activations, our contract) and 4 (activations rounded to int8 per block: its fastest CPU path).
One decode step (one new token, a past of L tokens) is timed for each L, every contender in one
process, interleaved, medians of repeated rounds: compare the ratios, not the times. tvmopt's
step runs on tvm tensors (the cache as generate keeps it) and reads back the last logits row;
ONNX Runtime's is `session.run` on numpy arrays, its presents returned as numpy.

Then greedy generation from one prompt: tvmopt float32's tokens must equal ONNX Runtime
float32's; the int4 weights of the two round differently, so tvmopt int4 against ONNX Runtime
int4 is reported as agreement (equal tokens, and the length of the equal prefix).

A past of 1024 would put the new token at position 1024, past GPT-2's 1024-entry position
table: the longest past a GPT-2 step can take is 1023.

    python bench/decoder.py [--layers 12] [--past 128,512,1023] [--rounds 15] [--threads N]
                            [--group-size 32] [--new-tokens 32] [--tvmopt "tvmopt int4 a8,..."]
                            [--target '{"kind": "llvm", "mcpu": "x86-64-v3"}']

--threads sets both runtimes' threads (TVM_NUM_THREADS, ONNX Runtime's intra-op threads);
the default is one per physical core, as tvmopt runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import time

import numpy as np

PROMPT = [464, 2068, 318, 257, 1332, 286, 262, 3303]
TVMOPT_WEIGHTS = {"tvmopt fp32": None, "tvmopt int8": "int8-weights",
                  "tvmopt int4": "int4-weights", "tvmopt int8 a8": "int8-weights-a8",
                  "tvmopt int4 a8": "int4-weights-a8"}  # fmt: skip
ORT_INT4_LEVELS = {"ORT int4": 0, "ORT int4 acc4": 4}


def export(layers: int):
    from tvmopt.benchmark.nets import gpt2

    config = gpt2.GPT2Config(layers=layers)
    return config, gpt2.export(gpt2.seeded(config))


def ort_int4(model, group_size: int, accuracy_level: int):
    """`model`'s MatMuls with constant weights as MatMulNBits (int4, zero points)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)  # a line per node

    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    config = DefaultWeightOnlyQuantConfig(block_size=group_size, is_symmetric=False,
                                          accuracy_level=accuracy_level)  # fmt: skip
    quantizer = MatMulNBitsQuantizer(copied, algo_config=config)
    quantizer.process()
    return quantizer.model.model


def ort_sessions(model, group_size: int, threads: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = False  # six GPT-2s in one process: the arenas' slack counts
    sessions = {}
    for name, level in {"ORT fp32": None, **ORT_INT4_LEVELS}.items():
        made = model if level is None else ort_int4(model, group_size, level)
        sessions[name] = ort.InferenceSession(made.SerializeToString(), options,
                                              providers=["CPUExecutionProvider"])  # fmt: skip
    return sessions


def tvmopt_models(model, group_size: int, names, target=None) -> dict:
    import tvmopt

    dims = {"batch": (1, 1), "seq": (1, 64), "past": (0, 1023)}
    compiled = {}
    for name in names:
        scheme = TVMOPT_WEIGHTS[name]
        start = time.perf_counter()
        compiled[name] = tvmopt.compile(model, target=target, dims=dims, quantize=scheme,
                                        group_size=group_size if scheme else None)  # fmt: skip
        print(f"{name}: compiled in {time.perf_counter() - start:.0f} s")
    return compiled


def step_feeds(config, past: int, seed: int = 0) -> dict:
    from tvmopt.benchmark.nets import gpt2

    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, config.vocab, (1, 1)).astype(np.int64)}
    shape = (1, config.heads, past, config.head_dim)
    names = gpt2.input_names(config)[1:]
    return feeds | {name: rng.standard_normal(shape).astype(np.float32) for name in names}


def tvmopt_step(compiled, feeds: dict):
    """One decode step as generate runs it: tvm tensors in and out, the last logits read."""
    from tvmopt.generate import _last_row

    tensors = [compiled.tensor(feeds[spec.name]) for spec in compiled.inputs]
    return lambda: _last_row(compiled.run_tensors(tensors)[0])


def ort_step(session, feeds: dict):
    return lambda: session.run(["logits"], feeds)[0][0, -1]


def steps(compiled: dict, sessions: dict, feeds: dict) -> dict:
    """name -> one decode step on `feeds`, returning the last logits row."""
    runs = {name: tvmopt_step(model, feeds) for name, model in compiled.items()}
    return runs | {name: ort_step(session, feeds) for name, session in sessions.items()}


def logit_errors(runs: dict) -> dict:
    """Each contender's largest logit difference from its reference: ONNX Runtime fp32 for the
    float32 and int8 rows, ONNX Runtime int4 (level 0) for the int4 rows."""
    outputs = {name: run() for name, run in runs.items()}
    reference = {name: _reference(name) for name in runs}
    return {name: float(np.abs(out - outputs[reference[name]]).max())
            for name, out in outputs.items()}  # fmt: skip


def _reference(name: str) -> str:
    """Whom a contender's logits and tokens are compared with: ONNX Runtime int4 at the same
    activations (level 4 for int8 ones) for the int4 rows, ONNX Runtime fp32 otherwise."""
    if "int4" not in name:
        return "ORT fp32"
    return "ORT int4 acc4" if name.endswith(("a8", "acc4")) else "ORT int4"


def ort_greedy(session, config, prompt, count: int) -> list[int]:
    """ONNX Runtime's greedy loop, its presents fed back as the past."""
    from tvmopt.benchmark.nets import gpt2

    feeds = step_feeds(config, 0) | {"input_ids": np.array([prompt], np.int64)}
    names, tokens = gpt2.input_names(config)[1:], []
    for _ in range(count):
        logits, *presents = session.run(None, feeds)
        tokens.append(int(np.argmax(logits[0, -1])))
        feeds = {"input_ids": np.array([[tokens[-1]]], np.int64)}
        feeds |= dict(zip(names, presents, strict=True))
    return tokens


def agreement(ours: list[int], theirs: list[int]) -> str:
    same = [a == b for a, b in zip(ours, theirs, strict=True)]
    prefix = same.index(False) if False in same else len(same)
    equal = sum(same)
    return f"{equal}/{len(ours)} tokens equal, first {prefix} identical"


def greedy_check(compiled: dict, sessions: dict, config, count: int) -> None:
    tokens = {name: list(model.generate(PROMPT, count).tokens) for name, model in compiled.items()}
    theirs = {name: ort_greedy(session, config, PROMPT, count)
              for name, session in sessions.items()}  # fmt: skip
    same = tokens["tvmopt fp32"] == theirs["ORT fp32"]
    print(f"greedy, prompt {PROMPT}, {count} new tokens:")
    fp32 = agreement(tokens["tvmopt fp32"], theirs["ORT fp32"])
    print(f"  tvmopt fp32 vs ORT fp32: {'identical' if same else 'DIFFERENT'} ({fp32}); "
          f"{tokens['tvmopt fp32']}")  # fmt: skip
    for name in [*tokens, *theirs][1:]:
        ours = tokens.get(name) or theirs[name]
        pairs = {_reference(name), "ORT fp32"} - {name}
        if pairs:
                print(f"  {name}: " + "; ".join(f"vs {other} {agreement(ours, theirs[other])}"
                                            for other in sorted(pairs)))  # fmt: skip


def latency_table(compiled: dict, sessions: dict, config, pasts, rounds: int) -> None:
    from tvmopt.timing import interleaved_medians

    names = [*compiled, *sessions]
    print("per-token ms (ratio to ORT fp32; max |logit error| vs its reference)")
    print(f"{'past':>5} " + " ".join(f"{name:>22}" for name in names))
    for past in pasts:
        runs = steps(compiled, sessions, step_feeds(config, past))
        errors = logit_errors(runs)
        medians = {name: s * 1e3 for name, s in interleaved_medians(runs, rounds, 3).items()}
        cells = (f"{medians[n]:7.2f} ({medians[n] / medians['ORT fp32']:.2f}; "
                 f"{errors[n]:.0e})" for n in names)  # fmt: skip
        print(f"{past:>5} " + " ".join(f"{cell:>22}" for cell in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--past", default="128,512,1023")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core")
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32, help="0: no greedy check")
    parser.add_argument("--target", type=json.loads, default=None,
                        help='tvmopt\'s target as JSON, e.g. \'{"kind": "llvm", "mcpu": '
                             '"x86-64-v3"}\' (the AVX2 build); default: the host')  # fmt: skip
    parser.add_argument("--tvmopt", default=",".join(TVMOPT_WEIGHTS),
                        help="tvmopt's contenders, of: " + ", ".join(TVMOPT_WEIGHTS))  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before TVM's pool starts
    config, model = export(args.layers)

    from tvmopt.threads import physical_cores

    threads = args.threads or physical_cores()
    compiled = tvmopt_models(model, args.group_size, ["tvmopt fp32", *(
        name for name in args.tvmopt.split(",") if name != "tvmopt fp32")], args.target)
    sessions = ort_sessions(model, args.group_size, threads)
    del model  # 0.5 GB of float32 weights the runtimes hold already (an earlier run ran out)
    gc.collect()
    print(f"target {compiled['tvmopt fp32'].metadata.target}; {threads} threads; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.new_tokens:
        greedy_check(compiled, sessions, config, args.new_tokens)
    latency_table(compiled, sessions, config, [int(p) for p in args.past.split(",")], args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
