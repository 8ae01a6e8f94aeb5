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

from .panel_gemm import DEFAULT_TILES, PanelTiles, register_tile


def padded_positions(positions: int, panels: int, budget: int,
                     tiles: PanelTiles = DEFAULT_TILES) -> int:  # fmt: skip
    """`positions`, or the multiple of a row count that fills the most of `budget`
    accumulators per useful position, where `positions`' own tile fills at most half of it
    (7x7's 7 x 1 of 12 stays)."""
    rows, chunks = register_tile(positions, panels, tiles, budget)
    if 2 * rows * chunks > budget:
        return positions

    def useful(padded: int) -> float:
        tile_rows, tile_chunks = register_tile(padded, panels, tiles, budget)
        return tile_rows * tile_chunks * positions / padded

    candidates = sorted({-(-positions // r) * r for r in range(2, min(tiles.rows, budget) + 1)})
    best = max(candidates, key=useful)  # max keeps the first of equals: the fewest positions
    return best if useful(best) > rows * chunks else positions


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
