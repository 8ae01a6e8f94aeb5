"""Element-wise loop nests with a symbolic extent (a sequence length): rows in parallel, the
constant trailing loops vectorized.

Fused into one loop and split by the vector, every lane's indices come back out of the fused
index by dividing by symbolic extents: 64-bit integer divisions, several per element, which
LLVM cannot vectorize (a 128-token MiniLM layer's QKV transpose: 11.6 ms against 32 us
static). Here only the leading loops, up to the last symbolic one, are fused (their divisions
run once per row); the trailing loops of constant extent are fused apart and vectorized, their
indices recovered by constant divisions that fold away.
"""

from __future__ import annotations

from .schedule_util import extents, largest_divisor


def constant_tail(sizes: list[int | None]) -> int:
    """How many trailing loops have constant extents."""
    count = 0
    while count < len(sizes) and sizes[-1 - count] is not None:
        count += 1
    return count


def parallel_rows_vector_tail(sch, loops: list, lanes: int, vectorize: bool = True) -> None:
    """`loops`, some symbolic, as parallel rows over a vectorized constant tail. A symbolic
    innermost loop stays a serial loop (no predicated vector: TVM would scalarize it) whose
    addresses advance by a constant stride."""
    sizes = extents(sch, loops)
    if len(loops) == 1:  # one symbolic loop: nothing to divide out, split it by whole vectors
        outer, vector = sch.split(loops[0], [None, lanes])
        sch.parallel(outer)
        if vectorize:
            sch.vectorize(vector)
        return
    tail = constant_tail(sizes)
    rows, inner = loops[: len(loops) - tail], loops[len(loops) - tail :]
    if tail == 0:  # the innermost loop is symbolic: parallel over the rest, if any
        rows, inner = loops[:-1], []
    if rows:
        sch.parallel(sch.fuse(*rows) if len(rows) > 1 else rows[0])
    if not inner or not vectorize:
        return
    width = 1
    for size in sizes[len(sizes) - tail :]:
        width *= size
    fused = sch.fuse(*inner) if len(inner) > 1 else inner[0]
    _, vector = sch.split(fused, [None, largest_divisor(width, lanes)])
    sch.vectorize(vector)
