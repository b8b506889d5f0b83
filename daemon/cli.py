"""The ``nbsd`` command: ``serve``, ``status``, ``stats``, ``check-config``, ``demo`` and ``keygen``.

Each subcommand has its own flags; bare ``nbsd`` prints the help and serves
nothing.  Every subcommand that talks to a daemon finds it the same way: the
``--endpoint``/``--socket`` flag, else the ``--config`` file's endpoint, else
``$NBSD_ENDPOINT``, else the system socket /run/nbsd/nbsd.sock.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from nbs.errors import NBSError
from nbsd.config import AWSConfig, Config, ConfigError, check_serving, effective, load_config
from nbsd.logs import setup_logging
from nbsd.version import VERSION

log = logging.getLogger("nbsd")
CONNECT_TIMEOUT_HELP = "seconds to wait for the daemon's answer (default: $NBSD_CONNECT_TIMEOUT or 5)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, like every other configuration error, instead of usage and message."""
        self.exit(2, f"{self.prog}: {message}\n")


def _where(parser: argparse.ArgumentParser) -> None:
    """How to name the daemon (or, for ``serve``, where to listen)."""
    parser.set_defaults(subparser=parser)  # its flags name the keys in configuration errors
    parser.add_argument("--config", help="TOML config file (see systemd/nbsd.toml)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="ipc:///path/to/socket or tcp://127.0.0.1:PORT")
    where.add_argument("--socket", help="socket path (shorthand for --endpoint ipc://PATH)")


def _settings(parser: argparse.ArgumentParser) -> None:
    """Flags that override the config file's keys, one for each."""
    _where(parser)
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
    parser.add_argument("--client-part-memory", action=argparse.BooleanOptionalAction,
                        help="let ipc clients hand their parts over in shared memory (a sealed memfd)")
    parser.add_argument("--curve-secret-key", help="the daemon's zmq.auth secret-key file (CURVE)")
    parser.add_argument("--curve-client-keys", help="directory of allowed clients' public-key files (CURVE)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--max-message-size")
    parser.add_argument("--session-ttl", type=float)
    parser.add_argument("--log-level")
    parser.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    parser.add_argument("--metrics-allow-remote", action=argparse.BooleanOptionalAction,
                        help="allow a --metrics address other than loopback")
    parser.add_argument("--aws-region")
    parser.add_argument("--aws-profile")
    parser.add_argument("--aws-endpoint", help="S3/DynamoDB endpoint URL (e.g. a local emulator)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbsd", description="Per-host caching daemon for Noms Block Stores.")
    parser.add_argument("--version", action="version", version=f"nbsd {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _settings(commands.add_parser("serve", help="run the daemon", description="Run the daemon."))
    _settings(commands.add_parser("check-config", help="validate the configuration and print it as it applies",
                                  description="Validate the configuration (file and flags) as serve would, and "
                                              "print every setting as it applies; exit 2 if it is wrong."))
    status = commands.add_parser("status", help="the running daemon's state, for people",
                                 description="The running daemon's state: version, policy, cache, errors, files.")
    stats = commands.add_parser("stats", help="every figure of the running daemon, as JSON",
                                description="Every figure of the running daemon, as JSON.")
    for sub in (status, stats):
        _where(sub)
        sub.add_argument("--timeout", type=float, help=CONNECT_TIMEOUT_HELP)
    status.add_argument("--json", action="store_true", help="print every figure as JSON (as stats does)")
    status.add_argument("--top", type=int, default=5, help="how many of the busiest stores to list (default 5)")
    demo = commands.add_parser("demo", help="start a daemon on a local store and run client processes against it")
    demo.add_argument("--clients", type=int, default=4, help="client processes")
    demo.add_argument("--dir", help="work directory (default: a temporary one, removed after)")
    keygen = commands.add_parser("keygen", help="create a CURVE key pair")
    keygen.add_argument("--dir", default=".", help="where to write the key pair")
    keygen.add_argument("--name", default="nbsd", help="the key pair's file name (NAME.key, NAME.key_secret)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "demo":
        from nbsd.demo import main as demo

        return demo(args.dir, args.clients, keep=args.dir is not None)
    if args.command == "keygen":
        return _keygen(args.dir, args.name)
    try:
        load = _loader(args)
        config = load()
    except ConfigError as err:
        print(f"nbsd: {err}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(config, load)
    if args.command == "check-config":
        for key, value in effective(config).items():
            print(f"{key} = {json.dumps(value)}")
        return 0
    endpoint = f"ipc://{args.socket}" if args.socket else args.endpoint or config.resolved_endpoint()
    as_json = args.command == "stats" or args.json
    return _report(endpoint, args.timeout, as_json, args.top if args.command == "status" else 0)


def _loader(args: argparse.Namespace) -> Callable[[], Config]:
    """Reads the file and applies the flags, checked as serving needs; run again on a reload."""
    keys = {*Config.model_fields, *(f"aws_{key}" for key in AWSConfig.model_fields)}
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k in keys}
    if args.socket:
        overrides["endpoint"] = f"ipc://{args.socket}"
    flags = {action.dest: action.option_strings[0] for action in args.subparser._actions if action.option_strings}
    flags["endpoint"] = "--socket" if args.socket else "--endpoint"
    serving = args.command in ("serve", "check-config")

    def load() -> Config:
        config = load_config(args.config, overrides, flags)
        if serving:
            check_serving(config)
        return config

    return load


def _serve(config: Config, load: Callable[[], Config]) -> int:
    from nbsd.server import Server, StartupError

    setup_logging(config.log_level)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server can reload: a HUP must not kill a starting daemon
    try:
        server = Server(config, load)
    except (StartupError, NBSError, OSError) as err:
        print(f"nbsd: cannot start: {err}", file=sys.stderr)  # one line, no traceback: a person reads it
        return 1
    log.info("nbsd %s started, pid %d, config %s", VERSION, os.getpid(), json.dumps(effective(config)))
    signal.signal(signal.SIGTERM, lambda *_: server.stop.set())
    signal.signal(signal.SIGINT, lambda *_: server.stop.set())
    signal.signal(signal.SIGHUP, lambda *_: server.reload.set())
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


def _report(endpoint: str, timeout: float | None, as_json: bool, top: int) -> int:
    from nbsclient.connection import Connection
    from nbsclient.protocol import STATS
    from nbsd.status import StatsReplyError, render

    try:
        with Connection(endpoint, connect_timeout=timeout) as conn:
            conn.hello()
            stats = conn.request(STATS, {}, timeout=conn.connect_timeout, retries=0)
    except NBSError as err:  # no daemon, no permission, no answer, refused CURVE keys
        print(f"nbsd: {err}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return 0
    try:
        print(render(stats, top), end="")
    except StatsReplyError as err:
        print(f"nbsd: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
