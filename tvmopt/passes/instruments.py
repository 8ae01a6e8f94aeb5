"""What `--dump-ir DIR` and `--print-pass-times` use: TVM's own pass instruments."""

from __future__ import annotations

from contextlib import contextmanager

from .._tvm import tvm


@contextmanager
def instrumented(dump_ir=None, pass_times: bool = False, report=print):
    """Run the block under a PassContext that dumps IR after every pass and/or times passes."""
    from tvm.ir.instrument import DumpIR, PassTimingInstrument

    instruments = []
    if dump_ir is not None:
        instruments.append(DumpIR(dump_ir, refresh=True))
    timing = PassTimingInstrument() if pass_times else None
    if timing is not None:
        instruments.append(timing)
    with tvm.transform.PassContext(opt_level=3, instruments=instruments):
        yield
        if timing is not None:
            report(PassTimingInstrument.render())
