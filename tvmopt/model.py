"""CompiledModel: a compiled library ready to run, time and export."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from . import bucket_padding, kv_cache
from ._tvm import tvm
from .artifact import Metadata, copy_library, write_library
from .backends import recorded_backend
from .backends.base import CPU_RECORD
from .backends.cpu_features import check_runs_here
from .backends.kernel_record import KERNELS_RECORD
from .buckets import BUCKETS_RECORD, function_by_shapes
from .dims import DimRange
from .frontend.signature import TensorSpec
from .inputs import check_inputs, check_tensors, random_inputs
from .profile import Profile, isa_peak, profile_vm
from .timing import Latency, time_callable
from .vm_results import leaves, numpy_viewable, tensor_leaves


class CompiledModel:
    """A model compiled by tvmopt, from `tvmopt.compile` or `tvmopt.load`.

    Parameters
    ----------
    module : tvm.relax.VMExecutable or tvm.runtime.Module
        The compiled code and weights.
    metadata : Metadata
        Input and output signatures, target and versions.
    library_path : str, optional
        The file `module` was loaded from; None for a freshly compiled model.
    backend : tvmopt.backends.Backend, optional
        What compiled `module`; it links the library on export.
    """

    def __init__(self, module, metadata: Metadata, library_path=None, backend=None):
        self.metadata = metadata
        self._module = module
        self._library_path = library_path
        self._backend = backend
        self._backend_class = recorded_backend(metadata)  # its loader: device, runtime
        self._vm = None
        self._staging = None  # one input tensor per input, reused by every run
        self._views = None  # numpy views of those tensors, where they are host memory
        self.quantize_report = None  # a QuantizeReport when compiled with quantize="int8"
        self.fleet = None  # compiled with ISA variants: all of them (isa_variants.Fleet)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.metadata.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.metadata.outputs

    @property
    def _machine(self):
        if self._vm is None:  # created on first use: a cross-compiled model is never run here
            if self._library_path is None:  # a loaded library was checked before it loaded
                # compiled here for another CPU: one line, not SIGILL in its first kernel
                check_runs_here(self.metadata.extra.get(CPU_RECORD), "the compiled model")
            self._backend_class.before_run()
            self._vm = tvm.relax.VirtualMachine(self._module, self._device)
        return self._vm

    @cached_property
    def _main(self):
        return self._machine["main"]  # looked up once: 2 us a run

    @cached_property
    def _buckets(self) -> dict:
        """{(each input's shape, ...): the VM function of that bucket} (buckets.py)."""
        return function_by_shapes(self.inputs, self.metadata.extra.get(BUCKETS_RECORD, []))

    @cached_property
    def _bucket_functions(self) -> dict:
        return {name: self._machine[name] for name in self._buckets.values()}

    def function_for(self, shapes) -> str:
        """The VM function a run on inputs of `shapes` (in signature order) takes: a bucket's
        static one where the shapes are a bucket's (or pad up to one), else `main`."""
        padded = self._padded_run(shapes) if self._padding else None
        if padded is not None:
            return padded.function
        return self._buckets.get(tuple(tuple(shape) for shape in shapes), "main")

    def _entry(self, shapes):
        if not self._buckets:
            return self._main
        name = self._buckets.get(tuple(shapes))
        return self._main if name is None else self._bucket_functions[name]

    @cached_property
    def _output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)

    @cached_property
    def _device(self):
        """The CPU, or the GPU for a CUDA library (a TargetError when there is none)."""
        return self._backend_class.device()

    def run(self, inputs) -> dict[str, np.ndarray]:
        """Run once. `inputs` maps input names to arrays (or lists them in signature order)."""
        arrays = check_inputs(self.inputs, inputs, self._dim_ranges)
        if self._kv_cache is not None:
            kv_cache.check_run(self._kv_cache, self.inputs, arrays)
        shapes = [a.shape for a in arrays]
        padded = self._padded_run(shapes) if self._padding else None
        if padded is not None:
            return self._run_padded(arrays, padded)
        result = self._entry(shapes)(*self._staged(arrays))
        return dict(zip(self._output_names, leaves(result), strict=True))

    @cached_property
    def _kv_cache(self) -> dict | None:
        return kv_cache.record_of(self.metadata)

    @cached_property
    def _padding(self) -> dict | None:
        """The metadata's bucket padding (bucket_padding.py), or None."""
        return self.metadata.extra.get(bucket_padding.PADDING_RECORD)

    def _padded_run(self, shapes) -> bucket_padding.PaddedRun | None:
        """The bucket a run of `shapes` pads up to, where it is no bucket's own size."""
        if tuple(tuple(shape) for shape in shapes) in self._buckets:
            return None
        dims = bucket_padding.run_dims(self.inputs, shapes)
        records = self.metadata.extra[BUCKETS_RECORD]
        return bucket_padding.choose(records, dims, self._padding["limit"])

    def _run_padded(self, arrays, run: bucket_padding.PaddedRun) -> dict[str, np.ndarray]:
        padded = bucket_padding.pad(arrays, self.inputs, run)
        result = self._bucket_functions[run.function](*self._staged(padded))
        outputs = bucket_padding.unpad(leaves(result), self.outputs, run)
        return {name: np.ascontiguousarray(out)
                for name, out in zip(self._output_names, outputs, strict=True)}  # fmt: skip

    def run_symbolic(self, inputs) -> dict[str, np.ndarray]:
        """Run once through the symbolic `main`, whatever the buckets (bucket padding's check)."""
        arrays = check_inputs(self.inputs, inputs, self._dim_ranges)
        return dict(zip(self._output_names, leaves(self._main(*self._staged(arrays))), strict=True))

    def run_tensors(self, tensors) -> list:
        """Run once on tvm tensors on the model's device (`tensor`), in signature order, and
        return the outputs as tvm tensors. Nothing is copied either way: a decoder's KV cache
        stays in the tensors one step returned and the next step takes (tvmopt.generate)."""
        check_tensors(self.inputs, tensors, self._dim_ranges)
        entry = self._entry([tuple(t.shape) for t in tensors]) if self._buckets else self._main
        return tensor_leaves(entry(*tensors))

    def tensor(self, array: np.ndarray):
        """`array` copied into a tvm tensor on the model's device, for run_tensors."""
        return tvm.runtime.tensor(array, self._device)

    def generate(self, prompt_ids, max_new_tokens: int, *, strategy: str = "greedy", k=None,
                 p=None, temperature: float = 1.0, seed=None):  # fmt: skip
        """Continue `prompt_ids` by `max_new_tokens` tokens, for a decoder compiled with a KV
        cache; a tvmopt.generate.Generation (the tokens and their latencies)."""
        from .generate import generate

        return generate(self, prompt_ids, max_new_tokens, strategy=strategy, k=k, p=p,
                        temperature=temperature, seed=seed)  # fmt: skip

    def _staged(self, arrays: list[np.ndarray]) -> list:
        """The inputs copied into tensors made once: a copy into an existing tensor costs a
        third of making one, which is most of a small model's run. On the CPU the copy goes
        into a numpy view of each tensor (1 us, where Tensor.copyfrom takes 11 us). (A
        CompiledModel, like the VM under it, runs one call at a time.)"""
        if self._staging is None or self._resized(arrays):
            self._staging = [tvm.runtime.empty(a.shape, a.dtype, self._device) for a in arrays]
            self._views = [_host_view(tensor) for tensor in self._staging]
        for tensor, view, array in zip(self._staging, self._views, arrays, strict=True):
            if view is None:
                tensor.copyfrom(array)
            else:
                np.copyto(view, array)
        return self._staging

    def _resized(self, arrays: list[np.ndarray]) -> bool:
        """A symbolic dim (the sequence length) changed size since the tensors were made.
        Static models skip the comparison, 4 us a run (ShapeTuple against tuple)."""
        if self._static:
            return False
        return any(tuple(t.shape) != a.shape for t, a in zip(self._staging, arrays, strict=True))

    @cached_property
    def _dim_ranges(self) -> dict:
        """The metadata's [lo, hi] per symbolic dim as DimRanges, made once, not every run."""
        return {name: DimRange(*bounds) for name, bounds in self.metadata.dims.items()}

    @cached_property
    def _static(self) -> bool:
        return all(spec.is_static for spec in self.inputs)

    def benchmark(self, inputs=None, repeat: int = 20, warmup: int = 2) -> Latency:
        """Time `repeat` runs (random inputs when none are given), VM calls only."""
        tensors = self._device_tensors(inputs)
        main, device = self._entry([tuple(t.shape) for t in tensors]), self._device

        def call():
            main(*tensors)
            device.sync()  # a GPU returns before its kernels finish

        return time_callable(call, repeat=repeat, warmup=warmup)

    def profile(self, inputs=None, repeat: int = 10) -> Profile:
        """Time every call of `repeat` runs (random inputs when none are given): per kernel,
        its time, share, GFLOP/s and share of the ISA's peak, the rule that scheduled it and
        the ONNX nodes it covers (Profile.table())."""
        self._machine  # noqa: B018 - readies the runtime (VTA's packed function) as a run does
        records = self.metadata.extra.get(KERNELS_RECORD, {})
        tensors = self._device_tensors(inputs)
        function = self.function_for(tuple(t.shape) for t in tensors)
        return profile_vm(self._module, self._device, tensors, repeat, records,
                          isa_peak(self.metadata, self._device), function)  # fmt: skip

    def _device_tensors(self, inputs) -> list:
        if inputs is None:
            inputs = random_inputs(self.inputs)  # an InputError for symbolic dims: no sizes
        arrays = check_inputs(self.inputs, inputs, self._dim_ranges)
        return [tvm.runtime.tensor(a, self._device) for a in arrays]

    def export(self, path, alone: bool = False) -> None:
        """Write the deployable shared library to `path`, atomically: with the ISA variants
        compiled beside this code, unless `alone`."""
        if self.fleet is not None and not alone:
            self.fleet.export(path)
        elif self._library_path is not None:
            copy_library(self._library_path, path)
        else:
            write_library(self._module, self.metadata, path, linker=self._backend.linker())

    def __repr__(self) -> str:
        inputs = ", ".join(spec.describe() for spec in self.inputs)
        outputs = ", ".join(spec.describe() for spec in self.outputs)
        return f"CompiledModel({inputs} -> {outputs}; target {self._backend_class.name})"


def _host_view(tensor):
    """A numpy array over `tensor`'s memory when it is host memory, else None."""
    return np.from_dlpack(tensor) if numpy_viewable(tensor) else None
