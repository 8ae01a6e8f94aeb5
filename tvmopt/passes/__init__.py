"""Our target-neutral graph passes over Relax, one per file: constant folding (`fold_constants`),
simplification (`simplify`), batch norm and scale folding (`fold_scale_shift`), activation
recognition (`recognize_activations`), epilogue fusion (`fuse_epilogue`), permute sinking
(`sink_permutes`) and int8 quantization (`quantize/`). `pipeline.py` lists them per opt level;
each backend (tvmopt/backends) builds its own pipeline from those lists. Nothing here imports a
backend."""

from .pipeline import DEFAULT_OPT_LEVEL, GRAPH_PASSES, OPT_LEVELS

__all__ = ["DEFAULT_OPT_LEVEL", "GRAPH_PASSES", "OPT_LEVELS"]
