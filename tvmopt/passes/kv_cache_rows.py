"""The TIR kernel that writes a step's new key or value rows into an in-place KV cache
(kv_cache_in_place.py): cache[b, h, past + s, d] = new[b, h, s, d]; the other rows untouched.

It checks first that the rows fit (0 <= past, past + seq <= capacity): a run past the capacity
stops with that error before any write, where it would write past the buffer's end. The check
lives here, not in the Relax graph: an assert there is impure, must sit outside the dataflow
block, and TVM's pattern rewriter (tvmopt.Simplify) then took 10x longer on the function.
Marked scheduled: a row copy of a few hundred bytes a step, which the CPU rules need not tile."""

from __future__ import annotations

OVERFLOW = "past_length + the new tokens do not fit the KV cache's rows (or past_length < 0)"


def write_rows(dtype: str):
    """A PrimFunc (cache, new, past) for caches of `dtype`, every dim but the rows' symbolic."""
    from tvm.script.parser import tirx as T

    @T.prim_func(private=True, s_tir=True)
    def kv_cache_write_rows(cache_handle: T.handle, new_handle: T.handle, past: T.int64):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        batch, heads, capacity, width, seq = T.int64(), T.int64(), T.int64(), T.int64(), T.int64()
        cache = T.match_buffer(cache_handle, (batch, heads, capacity, width), dtype)
        new = T.match_buffer(new_handle, (batch, heads, seq, width), dtype)
        assert past >= T.int64(0) and past + seq <= capacity, OVERFLOW
        for b, h, s, d in T.grid(batch, heads, seq, width):
            with T.sblock("write_rows"):
                vb, vh, vs, vd = T.axis.remap("SSSS", [b, h, s, d])
                T.reads(new[vb, vh, vs, vd])
                T.writes(cache[vb, vh, past + vs, vd])
                cache[vb, vh, past + vs, vd] = new[vb, vh, vs, vd]

    return kv_cache_write_rows
