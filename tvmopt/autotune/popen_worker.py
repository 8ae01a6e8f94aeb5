"""TVM's pool worker, started with TVM imported the way tvmopt imports it: without torch."""

from .. import _tvm  # noqa: F401 - import TVM before anything imports it with torch

if __name__ == "__main__":
    from tvm.exec.popen_worker import main

    main()
