"""``rollout-trace serve``: a local, read-only web viewer for a trace root.

Needs the ``serve`` extra (``pip install 'rollout-trace[serve]'``: Starlette
and Uvicorn). Everything shown comes from the Python API
(``rollout_trace.replay_bundle`` and the views it returns); this package only
converts the reduced graph to JSON and presents it. See ``docs/serve.md``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence

DEFAULT_PORT = 8765

__all__ = ["main", "run"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", metavar="ROOT|BUNDLE",
                        help="a trace root (searched for bundles) or one bundle; default $CODEX_ROLLOUT_TRACE_ROOT")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                        help="address to bind (default 127.0.0.1; others need --allow-non-loopback)")
    parser.add_argument("--allow-non-loopback", action="store_true",
                        help="allow --host to be a non-loopback address (anyone who can reach it can read the traces)")
    parser.add_argument("--compat", metavar="NAME", help="replay with this compatibility profile (passed to replay_bundle)")
    parser.add_argument("--lenient", action="store_true", help="replay leniently (passed to replay_bundle)")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not keep the bundle list's summaries in ~/.cache/rollout-trace between runs")
    parser.add_argument("--poll", type=float, default=0.5, metavar="SECONDS",
                        help="how often live views look for changes (default 0.5)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(root: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, allow_non_loopback: bool = False,
        compat: str | None = None, lenient: bool = False, poll: float = 0.5, cache: bool = True) -> int:
    """Serves ``root`` until interrupted. Returns an exit code."""
    try:
        import uvicorn
        from rollout_trace.serve.app import Viewer, create_app
    except ImportError as error:
        print(f"rollout-trace serve needs the [serve] extra: pip install 'rollout-trace[serve]' ({error})", file=sys.stderr)
        return 2
    if not _is_loopback(host):
        if not allow_non_loopback:
            print(f"rollout-trace serve: refusing to bind {host}, which is not loopback; "
                  "pass --allow-non-loopback to serve your traces to the network", file=sys.stderr)
            return 2
        print(f"WARNING: serving on {host}: anyone who can reach this address can read every trace below {root}",
              file=sys.stderr)
    if not os.path.isdir(root):
        print(f"rollout-trace serve: {root} is not a directory", file=sys.stderr)
        return 2
    try:
        sock = _bind(host, port)
    except OSError as error:
        print(f"rollout-trace serve: cannot bind {host}:{port}: {error}", file=sys.stderr)
        return 2
    bound_port = sock.getsockname()[1]
    viewer = Viewer(root, compat=compat, lenient=lenient, poll=poll, cache=cache)
    app = create_app(viewer, host=host, port=bound_port)
    shown = f"[{host}]" if ":" in host else host
    print(f"rollout-trace serve: http://{shown}:{bound_port}/  ({viewer.describe()})", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1,
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()
    return 0


def _run_args(args: argparse.Namespace) -> int:  # noqa: D103
    root = args.root or os.environ.get("CODEX_ROLLOUT_TRACE_ROOT")
    if not root:
        print("rollout-trace serve: name a ROOT or BUNDLE, or set CODEX_ROLLOUT_TRACE_ROOT", file=sys.stderr)
        return 2
    return run(root, host=args.host, port=args.port, allow_non_loopback=args.allow_non_loopback,
               compat=args.compat, lenient=args.lenient, poll=args.poll, cache=not args.no_cache)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rollout-trace serve",
        description="Serve a read-only web viewer of every bundle below ROOT (or of one BUNDLE) on "
        "127.0.0.1 and print its URL. Needs the [serve] extra (Starlette, Uvicorn).",
    )
    _add_arguments(parser)
    return _run_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
