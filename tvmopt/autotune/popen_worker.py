"""TVM's pool worker, started with TVM imported the way tvmopt imports it: without torch."""

from .. import _tvm  # noqa: F401 - import TVM before anything imports it with torch

if __name__ == "__main__":
    import os

    if os.environ.get("TVMOPT_WORKER_CUDA"):  # set by tune for GPU targets
        from ..backends.cuda.toolchain import enable_codegen

        enable_codegen()  # CUDA kernels compile to device code, and CUDA modules load
    from tvm.exec.popen_worker import main

    main()
