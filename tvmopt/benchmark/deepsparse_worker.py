"""DeepSparse as a peer in tvmopt's benches, run in a Python of its own (no tvmopt there).

DeepSparse 1.8 pins onnx 1.14, which tvmopt cannot use, so it lives in another virtual
environment (see deepsparse_peer.py) and this script is that environment's side: it reads
one JSON request a line on stdin and answers one JSON line on stdout, so that the bench can time
DeepSparse in rounds alternating with its other contenders, each timed inside its own process.

    {"compile": "model.onnx", "batch": 1, "cores": 1}   -> {"ok": true}
    {"feeds": "feeds.npz"}                  -> {"ok": true}        (inputs for what follows)
    {"run": "out.npz"}                      -> {"ok": true}        (the outputs, saved in order)
    {"time": 1}                             -> {"ms": [...]}       (that many timed runs)

Anything that fails answers {"error": "..."} in one line.
"""

import json
import sys
import time

import numpy as np


class Worker:
    def __init__(self):
        self.engine = None
        self.feeds = None

    def compile(self, request):
        import deepsparse

        self.engine = deepsparse.compile_model(
            request["compile"], batch_size=request["batch"], num_cores=request["cores"]
        )
        return {"ok": True}

    def load_feeds(self, request):
        with np.load(request["feeds"]) as data:
            self.feeds = [data[name] for name in data.files]
        return {"ok": True}

    def run(self, request):
        np.savez(request["run"], *self.engine(self.feeds))
        return {"ok": True}

    def time(self, request):
        times = []
        for _ in range(request["time"]):
            start = time.perf_counter()
            self.engine(self.feeds)
            times.append((time.perf_counter() - start) * 1e3)
        return {"ms": times}

    def handle(self, request):
        for key, method in (("compile", self.compile), ("feeds", self.load_feeds),
                            ("run", self.run), ("time", self.time)):  # fmt: skip
            if key in request:
                return method(request)
        return {"error": f"unknown request {sorted(request)}"}


def main():
    worker = Worker()
    for line in sys.stdin:
        try:
            answer = worker.handle(json.loads(line))
        except Exception as error:  # the bench prints it; the worker stays up for the next
            answer = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
