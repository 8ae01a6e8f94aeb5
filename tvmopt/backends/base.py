"""The Backend interface: everything tvmopt does differently for one family of targets.

A Backend is made once from the user's target (`backends.resolve`) and carried down through
import, quantization, the graph passes, lowering, the build, the artifact and loading:

    graph_passes   the passes it wants on the imported graph, one named list per opt level
    lowering       legalization, its kernel rules, TVM's finalization
    build          tvm.compile with both, plus what its artifact records (`record`)
    linker         how the library is linked (a cross compiler, say)
    device         where a loaded library runs; `before_load` readies TVM's runtime for it
    int8_kernels   the TE kernels its int8 layers run on, for passes/quantize/convert.py, and
                   the layers that would be slower in int8 than in float32 (int8_slower)
    tuning         the kernels worth tuning and the space MetaSchedule searches

A subclass overrides what differs; a new target is a folder under backends/ with one Backend
subclass, and one line in the registry (registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .._tvm import tvm
from ..errors import OptionError, TuneError
from ..passes.pipeline import instantiate, sequential
from .cpu_features import check_runs_here

CPU_RECORD = "cpu"  # the metadata record of the CPU features a library's code needs

PRECISIONS = ("fp32", "fp16")
SPARSE_MODES = ("off", "auto", "force")  # BuildOptions.sparse (backends/llvm/sparse_choice.py)


@dataclass(frozen=True)
class BuildOptions:
    """What a compile asks of the backend beyond its target."""

    precision: str = "fp32"  # fp16: convs and matmuls on float16 operands (CUDA)
    winograd: bool = True  # 3x3 convs by Winograd where it pays (CPU)
    cuda_graph: bool = False  # kernels captured into CUDA graphs (CUDA)
    sparse: str = "auto"  # matmuls with sparse constant weights on sparse kernels (CPU, -O3)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise OptionError(f"precision must be 'fp32' or 'fp16', got {self.precision!r}")
        if self.sparse not in SPARSE_MODES:
            raise OptionError(f"sparse must be 'off', 'auto' or 'force', got {self.sparse!r}")


class Backend:
    """One target family's compiler. Subclasses set the class attributes and override what
    differs; the module docstring lists the parts."""

    name: ClassVar[str] = ""  # the registry's key, a JSON target's kind, recorded in artifacts
    aliases: ClassVar[tuple[str, ...]] = ()  # short --target names that mean this backend
    example: ClassVar[str] = ""  # a JSON target, for error messages
    measure_device: ClassVar[str] = "cpu"  # MetaSchedule's device type for the runner
    untuned_is_record: ClassVar[bool] = True  # the untuned schedule's trace replays as a record

    def __init__(self, target: tvm.target.Target, options: BuildOptions | None = None):
        self.target = target
        self.options = options or BuildOptions()
        self.check_options(self.options)

    # --- targets -------------------------------------------------------------------------------
    @classmethod
    def named_target(cls, name: str) -> tvm.target.Target:
        """The target that one of `aliases` stands for."""
        raise NotImplementedError

    @classmethod
    def target_from_spec(cls, spec: dict) -> tvm.target.Target:
        """A complete target from a JSON dict of this backend's kind."""
        raise NotImplementedError

    @classmethod
    def complete(cls, target: tvm.target.Target) -> tvm.target.Target:
        """`target` with whatever the user left out filled in."""
        return target

    @classmethod
    def with_arch(cls, spec: dict, arch: str) -> dict:
        """`spec` for the accelerator architecture `arch` (--arch)."""
        raise OptionError(f"--arch is for --target cuda, not --target {cls.name}")

    def check_options(self, options: BuildOptions) -> None:
        """Refuse what this backend cannot do, before any work (import, calibration)."""
        if options.precision != "fp32":
            raise OptionError(f"precision '{options.precision}' is for CUDA targets; "
                              "CPU kernels stay float32")  # fmt: skip
        if options.cuda_graph:
            raise OptionError("cuda_graph is for CUDA targets (a CPU has no kernel launches to "
                              "save)")  # fmt: skip

    weight_only = False  # runs weight-only quantized matmuls (quantize='int4-weights')
    buckets = False  # builds static variants beside a symbolic main (buckets.py)
    isa_variants = False  # its libraries hold code for several CPUs (isa_variants.py)

    # --- quantization --------------------------------------------------------------------------
    def recipe(self, quantize: str | None) -> str | None:
        """The quantization recipe (tvmopt/quantization.py) for the user's `quantize`."""
        return quantize

    def calibration_backend(self) -> Backend:
        """Where calibration and the accuracy probe run: a CPU backend (this one, on CPUs)."""
        return self

    def int8_kernels(self):
        """The int8 layers' kernels (passes.quantize.convert.Int8Kernels) for this target."""
        raise OptionError(f"int8 quantization is not supported for target {self.name}")

    def int8_slower(self, kind: str) -> str | None:
        """Why an int8 layer of `kind` (conv2d, depthwise, matmul: quantize/annotate.py) would
        run slower here than in float32, or None. Calibrated quantization keeps such layers in
        float32, and its report gives the reason."""
        return None

    # --- graph and lowering --------------------------------------------------------------------
    def graph_passes(self, opt_level: int) -> list:
        """The graph passes of `opt_level`, as (name, pass factory) pairs."""
        raise NotImplementedError

    def graph_after_quantize(self) -> list:
        """The graph passes that follow int8 quantization (which ran the ones before it)."""
        raise NotImplementedError

    def lowering_passes(self, opt_level: int, database=None) -> list:
        """(name, pass) pairs from legalization to the VM program; kernels the tuning
        `database` has records of take them before the untuned rules."""
        raise NotImplementedError

    def precision_passes(self) -> list:
        """(name, pass) pairs between the graph passes and lowering (fp16 storage, say)."""
        return []

    def pipeline(self, graph: list, opt_level: int, database=None) -> tvm.transform.Pass:
        """The whole Relax pipeline for tvm.compile: `graph`, then lowering."""
        passes = instantiate(graph) + self.precision_passes()
        passes += self.lowering_passes(opt_level, database)
        return sequential(f"tvmopt.O{opt_level}", passes, self.target)

    def tuning_pipeline(self, graph: list, opt_level: int) -> tvm.transform.Pass:
        """The pipeline up to scheduling: its output's TIR functions are the kernels to tune."""
        passes = instantiate(graph) + self.precision_passes() + self.lowering_passes(opt_level)
        first_schedule = next(i for i, (name, _) in enumerate(passes)
                              if name.startswith("schedule_"))  # fmt: skip
        return sequential("tvmopt.tuning", passes[:first_schedule], self.target)

    # --- build and artifact --------------------------------------------------------------------
    def build(self, mod: tvm.IRModule, graph: list, opt_level: int, database=None):
        """A VM executable of `mod`, through `graph` and lowering."""
        pipeline = self.pipeline(graph, opt_level, database)
        return tvm.compile(mod, target=self.target, relax_pipeline=pipeline,
                           tir_pipeline=self.tir_pipeline())  # fmt: skip

    def build_with_variants(self, mod, variants: dict, graph: list, opt_level: int,
                            database=None):  # fmt: skip
        """One VM executable of `mod` and of `variants` (function name -> module, each with
        its own `main`): each through `graph` on its own, then merged (merge_variants.py) and
        lowered together, so that their kernels share one library and their weights one copy."""
        from .merge_variants import merged

        def optimized(module):
            passes = instantiate(graph) + self.precision_passes()
            return sequential("tvmopt.graph", passes, self.target)(module)

        functions = {name: optimized(module) for name, module in variants.items()}
        lowering = sequential(f"tvmopt.O{opt_level}.lowering",
                              self.lowering_passes(opt_level, database), self.target)  # fmt: skip
        return tvm.compile(merged(optimized(mod), functions), target=self.target,
                           relax_pipeline=lowering, tir_pipeline=self.tir_pipeline())  # fmt: skip

    def tir_pipeline(self) -> str:
        """The TIR lowering tvm.compile runs on the kernels, by its registered name."""
        return "default"

    def record(self) -> dict:
        """What the last build adds to the artifact's metadata (VTA's layer placement, the CPU
        features the code needs, say)."""
        return {}

    def linker(self):
        """The `fcompile` that links the library; None for TVM's default (the host's)."""
        return None

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def before_load(cls, metadata, path) -> None:
        """Check that the library at `path` runs here (the CPU features its code needs), and
        ready TVM's runtime for it, before it is loaded."""
        check_runs_here(metadata.extra.get(CPU_RECORD), path)

    @classmethod
    def before_run(cls) -> None:
        """Ready what a loaded library calls at run time, before its VM is made."""

    @classmethod
    def device(cls):
        """Where a library of this backend runs (a TargetError when that is missing)."""
        return tvm.cpu()

    # --- tuning --------------------------------------------------------------------------------
    def check_tunable(self) -> None:
        """Refuse to tune where this backend has no search space, before any work."""
        raise TuneError(f"tuning for {self.name} is not implemented yet")

    def tunable_rule(self, mod: tvm.IRModule) -> type | None:
        """The rule whose schedule is searched for the kernel `mod`; None: not worth tuning."""
        raise NotImplementedError

    def search_space(self, rule: type):
        """MetaSchedule's space generator for kernels of `rule`."""
        raise NotImplementedError

    def untuned_schedule(self, rule: type, mod: tvm.IRModule):
        """The kernel as compiling without tuning schedules it, with its trace."""
        raise NotImplementedError

    def prepare_measurement(self, measure) -> None:
        """Check that candidates can be measured here, before the database is touched."""

    def trials_per_batch(self, requested: int, build_workers: int) -> int:
        return requested
