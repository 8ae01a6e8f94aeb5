"""The CPU backend (x86 and aarch64, through LLVM): target detection (target.py), the pipeline
(pipeline.py), the layout passes that shape work for its kernels (conv_channels_last.py,
conv1x1_as_matmul.py, pack_matmul_weights.py), the TE kernels they emit (kernel_*.py), the
schedule rules that tile them (rule_*.py, rules.py), and the tuning space (tuning.py)."""

from .backend import LLVMBackend, int8_kernels
from .target import host_target, portable_host_target

__all__ = ["LLVMBackend", "host_target", "int8_kernels", "portable_host_target"]
