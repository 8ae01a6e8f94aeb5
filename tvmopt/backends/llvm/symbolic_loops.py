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

# tells TVM's LoopPartition to split this loop where a condition in it changes (the vector that
# runs past a symbolic row's end): whole vectors without the predicate, then the last one
PARTITION_HINT = "pragma_loop_partition_hint"

# the least constant count of parallel tasks that a schedule keeping a symbolic loop serial
# inside them takes: attention's 12 heads
MIN_TASKS = 8


def constant_tail(sizes: list[int | None]) -> int:
    """How many trailing loops have constant extents."""
    count = 0
    while count < len(sizes) and sizes[-1 - count] is not None:
        count += 1
    return count


def parallel_rows_vector_tail(sch, loops: list, lanes: int, vectorize: bool = True) -> None:
    """`loops`, some symbolic, as parallel rows over a vectorized constant tail. A symbolic
    innermost loop is split into whole vectors and a peeled last one (peeled_vectors)."""
    sizes = extents(sch, loops)
    if len(loops) == 1:  # one symbolic loop: nothing to divide out, split it by whole vectors
        outer, vector = sch.split(loops[0], [None, lanes])
        sch.parallel(outer)
        if vectorize:
            sch.vectorize(vector)
        return
    tail = constant_tail(sizes)
    if tail == len(loops) - 1 and vectorize and _tail_width(sizes, tail) % lanes == 0:
        return _one_vector_loop(sch, loops, lanes)
    rows, inner = loops[: len(loops) - tail], loops[len(loops) - tail :]
    if tail == 0:  # the innermost loop is symbolic: parallel over the rest, if any
        rows, inner = loops[:-1], []
    if rows:
        parallel = _parallel_rows(sizes, rows)
        sch.parallel(sch.fuse(*parallel) if len(parallel) > 1 else parallel[0])
    if tail == 0 and vectorize:
        peeled_vectors(sch, loops[-1], lanes)
    if not inner or not vectorize:
        return
    width = 1
    for size in sizes[len(sizes) - tail :]:
        width *= size
    fused = sch.fuse(*inner) if len(inner) > 1 else inner[0]
    _, vector = sch.split(fused, [None, largest_divisor(width, lanes)])
    sch.vectorize(vector)


def _parallel_rows(sizes, rows: list) -> list:
    """The row loops to fuse into the parallel one: all of them, or, where the last is symbolic
    and those before it make MIN_TASKS tasks of constant count, only those before it. The last
    then runs serially in each task, and no lane's index is recovered by dividing the fused
    index by symbolic extents (a MiniLM layer's QKV bias + head split at 384 tokens, Zen 4:
    179 us, against 90 us static)."""
    tasks = 1
    for size in sizes[: len(rows) - 1]:
        tasks *= size or 1
    if len(rows) > 1 and sizes[len(rows) - 1] is None and tasks >= MIN_TASKS:
        return rows[:-1]
    return rows


def peeled_vectors(sch, loop, lanes: int) -> None:
    """A loop of symbolic extent as whole vectors plus the last, partial one: a predicated
    vector loop alone is scalarized by TVM, so LoopPartition (asked by the hint) peels the
    iteration where the predicate changes, leaving the body unpredicated vector code."""
    vectors, vector = sch.split(loop, [None, lanes])  # predicated: lane < n
    sch.annotate(vectors, PARTITION_HINT, 1)
    sch.vectorize(vector)


def _tail_width(sizes, tail: int) -> int:
    width = 1
    for size in sizes[len(sizes) - tail :]:
        width *= size
    return width


def _one_vector_loop(sch, loops, lanes: int) -> None:
    """One symbolic outermost loop over whole rows of vectors: fused and split by the vector, as
    a static nest is (the lanes' indices come back out by constant divisions only)."""
    fused = sch.fuse(*loops)
    outer, vector = sch.split(fused, [None, lanes])
    sch.parallel(outer)
    sch.vectorize(vector)
