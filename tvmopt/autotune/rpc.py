"""`tvmopt rpc tracker` and `tvmopt rpc server`: TVM's RPC tracker and server, run in this
process. TVM's Tracker and Server classes would start them in a pool worker that imports torch
(10-25 s); ours import TVM without it, and each measuring session still gets a forked child."""

from __future__ import annotations

import logging
import socket

from tvm.rpc.server import PopenRPCServerState

from ..errors import OptionError, TuneError, last_line

PORT_RANGE = 100  # ports tried from the one asked for


def serve_tracker(host: str, port: int) -> None:
    from tvm.rpc.tracker import PopenTrackerServerState  # needs tornado: only the tracker does

    state = _bound(PopenTrackerServerState, host, port)
    _announce(f"rpc tracker listening on {host}:{state.port}")
    state.thread.join()


def serve(host: str, port: int, tracker: str, key: str) -> None:
    tracker_host, _, tracker_port = tracker.rpartition(":")
    state = _bound(PopenRPCServerState, host, port,
                   tracker_addr=(tracker_host, int(tracker_port)), key=key)  # fmt: skip
    _announce(f"rpc server '{key}' listening on {host}:{state.port}, registered with {tracker}")
    state.thread.join()


def _bound(state_class, host: str, port: int, **kwargs):
    logging.getLogger("RPCServer").setLevel(logging.WARNING)
    logging.getLogger("RPCTracker").setLevel(logging.WARNING)
    try:
        return state_class(host, port, port + PORT_RANGE, **kwargs)
    except (OSError, ValueError) as err:
        raise OptionError(f"cannot listen on {host}:{port}: {err}") from None


def _announce(line: str) -> None:
    print(line, flush=True)  # at once: whoever started us waits for this line


def check_tracker(address: str, key: str) -> None:
    """Fail fast, in one line, when the tracker is unreachable or has no server for `key`."""
    from tvm import rpc

    host, _, port = address.rpartition(":")
    try:
        # TVM's client retries an unreachable tracker for a minute; one plain connect first
        socket.create_connection((host, int(port)), timeout=5).close()
        summary = rpc.connect_tracker(host, int(port)).summary()
    except Exception as err:  # noqa: BLE001 - socket and TVM errors alike
        reason = last_line(err, "unknown error")
        raise TuneError(f"cannot reach the RPC tracker at {address}: {reason}") from None
    keys = summary.get("queue_info", {})
    if key not in keys or not keys[key].get("free", 0) + keys[key].get("pending", 0):
        found = ", ".join(sorted(keys)) or "none"
        raise TuneError(f"the RPC tracker at {address} has no server with key '{key}' "
                        f"(keys: {found})")  # fmt: skip
