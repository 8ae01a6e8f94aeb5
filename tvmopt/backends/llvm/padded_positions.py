"""How many output positions a channels-last conv's GEMM computes: its own, or a few more where
they divide badly into register tiles.

The panel GEMM (panel_gemm.py) tiles positions by exact divisors, so a 13x13 map's 169 positions
(or a 3x3 conv's 13 columns) got one position per register tile, one or two accumulators of the
twelve AVX2 holds: SqueezeNet's 512->1000 conv on 13x13 ran at 6 GFLOP/s. Padded to 180, the
tile is 12 x 1; the extra positions read the last real one and are never written out.

An odd count of weight panels tiles one panel wide; where its positions then divide badly too,
one more panel of zero weights (whose channels are never written out) makes the tile two panels
wide instead: ShuffleNetV2's 232->232 pointwise convs on 7x7 (15 panels of 16 on AVX-512) got
13 x 1 tiles over 52 padded positions, whose clamped rows LLVM addresses through one register
each, and ran at 44 GFLOP/s; 16 panels tile 49 positions 7 x 2 (micro-benchmark on znver4,
AVX-512: 114 -> 60 us).
"""

from __future__ import annotations

from .cpu import FMA_CHAINS
from .panel_gemm import DEFAULT_TILES, PanelTiles, register_tile


def padded_positions(positions: int, panels: int, budget: int,
                     tiles: PanelTiles = DEFAULT_TILES) -> int:  # fmt: skip
    """`positions`, or the multiple of a row count that fills the most of `budget`
    accumulators per useful position, where `positions`' own tile fills at most half of it
    (7x7's 7 x 1 of 12 stays: a windowed conv's rows stay rows)."""
    rows, chunks = register_tile(positions, panels, tiles, budget)
    if 2 * rows * chunks > budget:
        return positions
    best, filled = _best_padding(positions, panels, budget, tiles, 1)
    return best if filled > rows * chunks else positions


def flat_positions(positions: int, panels: int, budget: int,
                   tiles: PanelTiles = DEFAULT_TILES) -> int:  # fmt: skip
    """The positions of a GEMM over a pointwise conv's flattened map: padded_positions', or,
    where its own tile leaves the FMA units waiting (fewer accumulators than cpu.FMA_CHAINS),
    the padding to a tile two or more panels wide that fills more per useful position. On AVX2
    a 7x7 map's 7 x 1 becomes 6 x 2 over 54 positions (Zen 4, 1 thread, least of 80 alternating
    runs: 1152->192 268 -> 239 us, 1280->320 572 -> 451, 320->1280 + SiLU 604 -> 548, 192->1152
    + SiLU 258 -> 258; AVX-512's tiles hold 8 or more and stay). One panel wide, the padded
    tile would be 12 x 1 over clamped rows, one general-purpose register each: ShuffleNetV2's
    116->116 on 14x14 ran 2.9x slower so (bench/results/extended/zen4-avx2-flat-padding)."""
    padded = padded_positions(positions, panels, budget, tiles)
    rows, chunks = register_tile(positions, panels, tiles, budget)
    if padded != positions or rows * chunks >= FMA_CHAINS:
        return padded
    best, filled = _best_padding(positions, panels, budget, tiles, 2)
    return best if filled > rows * chunks else positions


def _best_padding(positions: int, panels: int, budget: int, tiles: PanelTiles, min_chunks: int):
    """(padded count, accumulators per useful position) of the multiple of a row count whose
    tile, `min_chunks` panels wide or more, fills the most accumulators per useful position;
    of equals, the fewest positions."""

    def useful(padded: int) -> float:
        tile_rows, tile_chunks = register_tile(padded, panels, tiles, budget)
        wide_enough = tile_chunks >= min_chunks
        return tile_rows * tile_chunks * positions / padded if wide_enough else 0.0

    candidates = sorted({-(-positions // r) * r for r in range(2, min(tiles.rows, budget) + 1)})
    best = max(candidates, key=useful)  # max keeps the first of equals: the fewest positions
    return best, useful(best)


# at most this share of a layer's panels is zero weights added to make the count even
MAX_EXTRA_PANEL_SHARE = 1 / 7


def padded_panels(positions: int, panels: int, budget: int,
                  tiles: PanelTiles = DEFAULT_TILES) -> int:  # fmt: skip
    """`panels`, or one more where the count is odd, its own tile over `positions` fills at most
    half of `budget` (the positions would be padded) and an even count's fills more."""
    if panels % 2 == 0 or panels * MAX_EXTRA_PANEL_SHARE < 1 or tiles.chunks < 2:
        return panels
    rows, chunks = register_tile(positions, panels, tiles, budget)
    even_rows, even_chunks = register_tile(positions, panels + 1, tiles, budget)
    if 2 * rows * chunks > budget or 2 * even_rows * even_chunks <= budget:
        return panels
    return panels + 1
