"""Our graph passes over Relax, one per file, assembled in `pipeline.py` into one flat list per
opt level: constant folding (`fold_constants`), simplification (`simplify`), batch norm and scale
folding (`fold_scale_shift`), activation recognition (`recognize_activations`) and epilogue
fusion (`fuse_epilogue`). int8 quantization will live in `passes/quantize/`."""

from .pipeline import DEFAULT_OPT_LEVEL, PIPELINES, build_pipeline

__all__ = ["DEFAULT_OPT_LEVEL", "PIPELINES", "build_pipeline"]
