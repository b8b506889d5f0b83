"""The ``nbsd`` command: ``serve`` (the default), ``status``, ``stats``, ``demo`` and ``keygen``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any, NoReturn

from nbs.errors import NBSError
from nbsd.config import ConfigError, check_serving, load_config
from nbsd.logs import setup_logging
from nbsd.server import Server, StartupError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like every other configuration error, instead of usage and message."""
        self.exit(2, f"nbsd: {message}\n")


_NOT_CONFIG = ("command", "config", "socket", "json", "clients", "dir", "name")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbsd", description="Per-host caching daemon for Noms Block Stores.")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "status", "stats", "demo", "keygen"])
    parser.add_argument("--config", help="TOML config file")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="ipc:///path/to/socket or tcp://127.0.0.1:PORT")
    where.add_argument("--socket", help="socket path (shorthand for --endpoint ipc://PATH)")
    parser.add_argument("--cache-dir")
    parser.add_argument("--cache-size", help="bytes, or e.g. 8GiB")
    parser.add_argument("--index-cache-size")
    parser.add_argument("--table-cache-size")
    parser.add_argument("--max-open-files", type=int)
    parser.add_argument("--local-root", action="append", dest="local_roots",
                        help="directory under which local stores may be opened (repeatable)")
    parser.add_argument("--aws-store", action="append", dest="aws_stores", metavar="PATTERN",
                        help='AWS stores clients may open, a glob over "table:bucket/store" (repeatable; "*" = all)')
    parser.add_argument("--allow-mem", action=argparse.BooleanOptionalAction, help="serve the shared mem store")
    parser.add_argument("--mem-store-size", help="most bytes the mem store holds")
    parser.add_argument("--client-fast-path", action=argparse.BooleanOptionalAction,
                        help="let clients read the cache file directly (group-readable cache)")
    parser.add_argument("--curve-secret-key", help="the daemon's zmq.auth secret-key file (CURVE)")
    parser.add_argument("--curve-client-keys", help="directory of allowed clients' public-key files (CURVE)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-message-size")
    parser.add_argument("--session-ttl", type=float)
    parser.add_argument("--log-level")
    parser.add_argument("--aws-region")
    parser.add_argument("--aws-profile")
    parser.add_argument("--aws-endpoint", help="S3/DynamoDB endpoint URL (e.g. a local emulator)")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    parser.add_argument("--clients", type=int, default=4, help="demo: client processes")
    parser.add_argument("--dir", help="demo: work directory (default: a temporary one, removed after); "
                                      "keygen: where to write the key pair")
    parser.add_argument("--name", default="nbsd", help="keygen: the key pair's file name (NAME.key, NAME.key_secret)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from nbsd.demo import main as demo

        return demo(args.dir, args.clients, keep=args.dir is not None)
    if args.command == "keygen":
        return _keygen(args.dir or ".", args.name)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}
    if args.socket:
        overrides["endpoint"] = f"ipc://{args.socket}"
    flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    flags["endpoint"] = "--socket" if args.socket else "--endpoint"
    try:
        config = load_config(args.config, overrides, flags)
        if args.command == "serve":
            check_serving(config)
    except ConfigError as err:
        print(f"nbsd: {err}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(config)
    return _report(config.resolved_endpoint(), args.command, args.json)


def _serve(config: Any) -> int:
    setup_logging(config.log_level)
    try:
        server = Server(config)
    except (StartupError, NBSError, OSError) as err:
        print(f"nbsd: cannot start: {err}", file=sys.stderr)  # one line, no traceback: a person reads it
        return 1
    signal.signal(signal.SIGTERM, lambda *_: server.stop.set())
    signal.signal(signal.SIGINT, lambda *_: server.stop.set())
    server.serve_forever()
    return 0


def _keygen(directory: str, name: str) -> int:
    """A CURVE key pair: NAME.key (public, to share) and NAME.key_secret (private to its owner)."""
    import zmq.auth

    os.makedirs(directory, exist_ok=True)
    old_umask = os.umask(0o077)  # pyzmq writes the files with the umask's mode
    try:
        public, secret = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old_umask)
    os.chmod(public, 0o644)
    print(f"public key (share it): {public}\nsecret key (keep it private): {secret}")
    return 0


def _report(endpoint: str, command: str, as_json: bool) -> int:
    from nbsclient.connection import Connection
    from nbsclient.protocol import STATS, DaemonUnavailableError

    try:
        with Connection(endpoint, timeout=5.0, retries=0) as conn:
            stats = conn.request(STATS, {})
    except DaemonUnavailableError as err:
        print(f"nbsd: no daemon at {endpoint}: {err}", file=sys.stderr)
        return 1
    except NBSError as err:  # e.g. refused CURVE keys
        print(f"nbsd: {err}", file=sys.stderr)
        return 1
    if command == "stats" or as_json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return 0
    cache = stats["cache"]
    ratio = cache["hit_ratio"]
    print(f"nbsd pid {stats['pid']} on {stats['endpoint']}, up {stats['uptime_s']}s, "
          f"{stats['sessions']} sessions")
    print(f"cache: {cache['bytes']}/{cache['budget']} bytes, {cache['entries']} chunks, hit ratio "
          f"{'n/a' if ratio is None else f'{ratio:.1%}'} (daemon {cache['hits']}, clients {cache['client_hits']}, "
          f"misses {cache['misses']}), {cache['evictions']} evicted, {cache['corrupt']} corrupt; {cache['state']}")
    index, files, memory = stats["index_cache"], stats["open_files"], stats["memory"]
    print(f"index cache: {index['bytes']}/{index['budget']} bytes, {index['tables']} tables")
    print(f"open files: {files['process']} (tables {files['tables']}, budget {files['budget']}); "
          f"rss {memory['rss']} bytes")
    for key, fig in sorted(stats["stores"].items()):
        print(f"  {key}: {fig['sessions']} sessions, {fig['chunks_requested']} chunks asked, "
              f"{fig['chunks_from_cache']} from cache, {fig['chunks_fetched']} fetched, "
              f"{fig['commits']} commits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
