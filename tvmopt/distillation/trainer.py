"""The distillation loop: AdamW, warm-up + cosine, gradient clipping, a tqdm bar with the loss,
held-out evaluation every K steps, checkpoints, and resumption that reproduces the run.

Batches are a function of (seed, step): epoch e visits the training set in the order of a
permutation seeded by (seed, e), so a resumed run sees exactly the batches the killed one would
have, and the same seed gives the same student."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import OptionError
from . import checkpoint
from .data import batches
from .losses import (
    LossConfig,
    Projections,
    attention_loss,
    hidden_loss,
    layerwise_loss,
    output_loss,
)
from .schedule import two_phases, warmup_cosine


@dataclass(frozen=True)
class TrainConfig:
    """How long and how fast the student learns."""

    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1  # the share of steps spent warming up
    clip: float = 1.0  # the largest gradient norm
    eval_every: int = 50
    checkpoint_every: int = 50
    seed: int = 0
    fake_quant: bool = False
    time_limit: float | None = None  # seconds: stop early (evaluated and saved) when spent
    # "wall" or "cpu": which clock time_limit reads; on a shared host the process's CPU time
    # (all its threads) is the budget that other jobs do not eat
    time_clock: str = "wall"
    threads: int | None = None  # torch's intra-op threads; 1 on a loaded machine (spinning)
    # batches drawn from windows of this many batches sorted by sample size: less padding
    # where sequences differ in length (a batch pads to its longest); 1: plain shuffling
    length_window: int = 1
    # the first `layerwise_steps` of `steps` train every block at once, each fed the teacher's
    # hidden state where it enters (the matched hidden states are forced to the teacher's) and
    # taught the teacher's at its exit: no error compounds across blocks, so a pruned model
    # recovers far faster than end to end; peak rate `layerwise_lr` (default: lr)
    layerwise_steps: int = 0
    layerwise_lr: float | None = None

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every", "length_window"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise OptionError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.layerwise_steps, int) or not 0 <= self.layerwise_steps <= self.steps:
            raise OptionError(f"layerwise_steps must be an integer in [0, steps], got "
                              f"{self.layerwise_steps!r}")  # fmt: skip
        if self.layerwise_lr is not None and not self.layerwise_lr > 0:
            raise OptionError(f"layerwise_lr must be positive, got {self.layerwise_lr}")
        if self.time_clock not in ("wall", "cpu"):
            raise OptionError(f"time_clock must be 'wall' or 'cpu', got {self.time_clock!r}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.warmup < 1 or self.clip <= 0:
            raise OptionError("lr and clip must be positive, weight_decay >= 0, warmup in [0, 1)")


# held-out inputs evaluated this many at a time: the interpreter keeps every intermediate of a
# forward pass, and 300 MiniLM sentences at once took ~8 GB (OOM-killed on a shared 24 GB host)
EVAL_CHUNK = 32


@dataclass
class Pairs:
    """Which student tensors learn from which teacher tensors, beyond the outputs."""

    hidden: dict
    attention: dict


class Trainer:
    def __init__(self, teacher, student, pairs: Pairs, widths: dict, losses: LossConfig,
                 config: TrainConfig, train: list, held_out: list, stack: bool):  # fmt: skip
        self.teacher, self.student, self.pairs = teacher, student, pairs
        self.losses, self.config, self.stack = losses, config, stack
        self.train_set, self.held_out = train, held_out
        torch.manual_seed(config.seed)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.projections = Projections(widths)
        params = [*student.parameters(), *self.projections.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        factor = self._factor(config)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.step, self.history = 0, []

    @staticmethod
    def _factor(config: TrainConfig):
        if not config.layerwise_steps:
            return warmup_cosine(round(config.warmup * config.steps), config.steps)
        scale = (config.layerwise_lr or config.lr) / config.lr
        return two_phases(config.warmup, config.layerwise_steps, config.steps, scale)

    # -- one step -----------------------------------------------------------------------------

    def batch_indices(self, step: int) -> list[int]:
        size, count = self.config.batch_size, len(self.train_set)
        positions = range(step * size, (step + 1) * size)
        return [self._order(p // count)[p % count] for p in positions]

    def _order(self, epoch: int) -> np.ndarray:
        if getattr(self, "_epoch", None) != epoch:
            self._epoch = epoch
            rng = np.random.default_rng([self.config.seed, epoch])
            self._permutation = self._grouped(rng.permutation(len(self.train_set)), rng)
        return self._permutation

    def _grouped(self, order: np.ndarray, rng) -> np.ndarray:
        """`order` cut into windows of `length_window` batches, each sorted by sample size
        into batches of similar length whose order is then shuffled (still a function of the
        seed and the epoch, so resumption sees the same batches)."""
        size, window = self.config.batch_size, self.config.batch_size * self.config.length_window
        if self.config.length_window == 1:
            return order
        out = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort([_size(self.train_set[i]) for i in chunk], kind="stable")]
            groups = [chunk[i : i + size] for i in range(0, len(chunk), size)]
            out += [groups[i] for i in rng.permutation(len(groups))]
        return np.concatenate(out)

    def loss(self, inputs: dict, layerwise: bool = False) -> torch.Tensor:
        feeds = {name: torch.from_numpy(value) for name, value in inputs.items()}
        with torch.no_grad():
            teacher = self.teacher(**feeds)
        if not layerwise:
            return self.combine(self.student(**feeds), teacher)
        forced = self.forced_pairs()
        self.student.forced = {s: teacher[t] for s, t in forced.items()}
        try:
            student = self.student(**feeds)
        finally:
            self.student.forced = {}
        return layerwise_loss(forced, student, teacher)

    def forced_pairs(self) -> dict:
        """The hidden pairs of equal width: those whose teacher value a student block can take."""
        return {s: t for s, t in self.pairs.hidden.items() if s not in self.projections.names}

    def combine(self, student: dict, teacher: dict) -> torch.Tensor:
        weights, total = self.losses, 0.0
        for name in self.student.output_names:
            total = total + weights.output_weight * output_loss(weights, student[name],
                                                                teacher[name])  # fmt: skip
        if self.pairs.hidden and weights.hidden_weight > 0:
            hidden = hidden_loss(self.pairs.hidden, self.projections, student, teacher)
            total = total + weights.hidden_weight * hidden
        if self.pairs.attention and weights.attention_weight > 0:
            total = total + weights.attention_weight * attention_loss(self.pairs.attention,
                                                                      student, teacher)  # fmt: skip
        return total

    def train_step(self, step: int) -> float:
        if step == self.config.layerwise_steps > 0:
            # AdamW's moments fit the layer-wise loss's gradients; kept, they would scale the
            # end-to-end loss's first steps wrongly (MiniLM: held-out cosine 0.896 -> 0.820)
            self.optimizer.state.clear()
        samples = [self.train_set[i] for i in self.batch_indices(step)]
        groups = list(batches(samples, self.stack))
        total = 0.0
        for group in groups:  # one group when stacked, else gradients accumulate per sample
            loss = self.loss(group, step < self.config.layerwise_steps) / len(groups)
            loss.backward()
            total += loss.item()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.config.clip)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    # -- the loop -------------------------------------------------------------------------------

    def run(self, directory: Path | None, key: str, progress: bool = True) -> list[dict]:
        from tqdm import tqdm

        config = self.config
        bar = tqdm(total=config.steps, initial=self.step, disable=not progress,
                   desc="distill", unit="step", dynamic_ncols=True)  # fmt: skip
        started = time.perf_counter()
        cpu_started = time.process_time()
        while self.step < config.steps:
            loss = self.train_step(self.step)
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}")
            last = self.step == config.steps or self._out_of_time(started, cpu_started)
            if self.step % config.eval_every == 0 or last:
                metrics = self.evaluate()
                self.history.append({"step": self.step, "loss": loss, **metrics,
                                     "seconds": time.perf_counter() - started,
                                     "cpu_seconds": time.process_time() - cpu_started})  # fmt: skip
                bar.write(_describe(self.step, loss, metrics))
            if directory is not None and (self.step % config.checkpoint_every == 0 or last):
                self.save(directory, key)
            if last:
                break
        bar.close()
        return self.history

    def _out_of_time(self, started: float, cpu_started: float) -> bool:
        limit = self.config.time_limit
        if self.config.time_clock == "cpu":
            return limit is not None and time.process_time() - cpu_started >= limit
        return limit is not None and time.perf_counter() - started >= limit

    def evaluate(self) -> dict:
        """Student against teacher on the held-out inputs: mean cosine of the first output per
        sample, and top-1 agreement where the output is logits (KL loss)."""
        cosines, agree = [], []
        name = self.student.output_names[0]
        held = self.held_out
        chunks = [held[i : i + EVAL_CHUNK] for i in range(0, len(held), EVAL_CHUNK)]
        with torch.no_grad():
            for inputs in (batch for chunk in chunks for batch in batches(chunk, self.stack)):
                feeds = {k: torch.from_numpy(v) for k, v in inputs.items()}
                s, t = self.student(**feeds)[name], self._held_out_teacher(inputs, feeds)
                s, t = s.reshape(s.shape[0], -1), t.reshape(t.shape[0], -1)
                cosines += torch.nn.functional.cosine_similarity(s, t, dim=-1).tolist()
                if self.losses.output_loss == "kl":
                    agree += (s.argmax(-1) == t.argmax(-1)).tolist()
        metrics = {"cosine": float(np.mean(cosines))}
        if agree:
            metrics["top1_agreement"] = float(np.mean(agree))
        return metrics

    def _held_out_teacher(self, inputs: dict, feeds: dict) -> torch.Tensor:
        """The frozen teacher's first output on a held-out batch, computed once."""
        cache = self.__dict__.setdefault("_teacher_cache", {})
        key = tuple(np.ascontiguousarray(v).tobytes() for v in inputs.values())
        if key not in cache:
            cache[key] = self.teacher(**feeds)[self.student.output_names[0]]
        return cache[key]

    # -- checkpoints ----------------------------------------------------------------------------

    def modules(self) -> dict:
        return {"student": self.student, "projections": self.projections,
                "optimizer": self.optimizer, "schedule": self.schedule}  # fmt: skip

    def save(self, directory: Path, key: str) -> None:
        checkpoint.save(directory, self.step, key, self.modules(), {"history": self.history})

    def restore(self, state: dict) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        self.step, self.history = state["step"], state["history"]

    def describe_config(self) -> dict:
        return {"train": asdict(self.config), "losses": asdict(self.losses),
                "pairs": asdict(self.pairs)}  # fmt: skip


def _size(sample: dict) -> int:
    return max(np.asarray(value).size for value in sample.values())


def _describe(step: int, loss: float, metrics: dict) -> str:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    return f"step {step}: loss {loss:.4g}, held-out {shown}"
