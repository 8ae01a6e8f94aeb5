"""tvmopt rpc tracker [--host H --port P] | tvmopt rpc server --tracker HOST:PORT --key KEY"""

from __future__ import annotations

from .arguments import host_port


def register(subparsers) -> None:
    parser = subparsers.add_parser("rpc", help="measure kernels on other machines (TVM RPC)")
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    tracker = roles.add_parser("tracker", help="hand out servers to tuning runs")
    tracker.add_argument("--host", default="0.0.0.0", help="address to listen on")
    tracker.add_argument("--port", type=int, default=9190, help="first port to try (default 9190)")
    tracker.set_defaults(handler=run_tracker)
    server = roles.add_parser("server", help="measure kernels for tuning runs")
    server.add_argument("--tracker", type=host_port, required=True, metavar="HOST:PORT")
    server.add_argument("--key", default="tvmopt", help="the key tuning runs ask for")
    server.add_argument("--host", default="0.0.0.0", help="address to listen on")
    server.add_argument("--port", type=int, default=9090, help="first port to try (default 9090)")
    server.set_defaults(handler=run_server)


def run_tracker(args) -> int:
    from ..autotune.rpc import serve_tracker

    serve_tracker(args.host, args.port)
    return 0


def run_server(args) -> int:
    from ..autotune.rpc import serve

    serve(args.host, args.port, args.tracker, args.key)
    return 0
