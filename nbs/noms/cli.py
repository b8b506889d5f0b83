"""The ``noms`` command (NOMS-VALUES.md 10): Go Noms's subcommands, flags and output, byte for byte.

Arguments are parsed with kingpin's rules (``cmdline``); each subcommand group
lives in ``nbs.noms.commands``.  Failures print ``error: <message>`` (plus
Go's usage line where Go prints it) and exit with status 1 - also where Go's
``main`` drops the status and exits 0 - never with a traceback.  Every
command opens its databases through ``nbs.noms.spec.open_chunk_store``, so
``--nbsd ENDPOINT`` (or ``$NOMS_NBSD``) routes them through the caching daemon.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import BinaryIO, TextIO

from nbs.errors import NBSError
from nbs.noms.cmdline import Command, Flag, HelpRequested, UsageError, help_text, parse
from nbs.noms.commands import blob, collections, commit, diff, inspect, json_io, merge, root, sync, version
from nbs.noms.commands.base import CommandFailed, Env, report
from nbs.noms.config import Resolver, find_config

NBSD_FLAG = "nbsd"


def build_app() -> Command:
    """Every command, flag and argument (Go's kingpin declarations)."""
    return Command("noms", "Noms is a tool for interacting with Noms data.", flags=[
        Flag("verbose", "show more", "bool", short="v"),
        Flag("quite", "show less", "bool", short="q"),
        Flag(NBSD_FLAG, "go through the nbsd caching daemon at ENDPOINT ('default' for the default endpoint); "
                        "$NOMS_NBSD does the same"),
    ], commands=[
        blob.command(), commit.command(), version.config_command(), diff.command(), inspect.ds_command(),
        *collections.commands(), inspect.log_command(), merge.command(), json_io.command(), root.command(),
        inspect.show_command(), root.stats_command(), sync.command(), version.command(),
    ])


def _without_extension_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` as Go would have seen it: without ``--nbsd`` (which only this port has)."""
    result, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--" + NBSD_FLAG:
            skip = True
        elif not arg.startswith(f"--{NBSD_FLAG}="):
            result.append(arg)
    return result


def _logger(err: TextIO) -> Callable[[str], None]:
    """Go's ``log.Printf`` to stderr: ``2006/01/02 15:04:05 <message>``."""
    def log(message: str) -> None:
        err.write(f"{time.strftime('%Y/%m/%d %H:%M:%S')} {message}\n")
    return log


def _silence_stdout(out: BinaryIO) -> None:
    """After the reader of our output went away, send the rest (interpreter-exit flushes) nowhere."""
    if out is getattr(sys.stdout, "buffer", None):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None, stdout: BinaryIO | None = None, stderr: TextIO | None = None,
         stdin: BinaryIO | None = None) -> int:
    """Run the ``noms`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr
    env: Env | None = None
    try:
        parsed = parse(build_app(), args)
        nbsd = str(parsed.values[NBSD_FLAG]) or None
        log = _logger(err) if parsed.values["verbose"] else None
        env = Env(out, err, stdin if stdin is not None else sys.stdin.buffer, Resolver(find_config(), log),
                  nbsd=nbsd, quiet=bool(parsed.values["quite"]))
        run = parsed.command.run
        assert run is not None
        return run(env, parsed.values)
    except HelpRequested as e:
        out.write(help_text(e.commands).encode())
        return 0
    except UsageError as e:
        err.write(f"noms: error: {e}, try --help\n")
        return 1
    except CommandFailed as e:
        return report(err, e, _without_extension_flags(args))
    except BrokenPipeError:
        _silence_stdout(out)
        return 1
    except (NBSError, OSError) as e:
        err.write(f"error: {e}\n")
        return 1
    finally:
        if env is not None:
            env.close()
        try:
            out.flush()
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(main())
