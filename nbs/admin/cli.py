"""The ``nbs`` command: ``nbs verify`` and ``nbs gc`` (see README, "Maintenance").

Exit status: 0 when the store is healthy / the collection went through; 1
when verify found problems or some delete failed; 2 when the command could
not run at all (bad arguments, no such store, storage unreachable, a
collection refused as unsafe), with one line on stderr saying why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from nbs.admin.gc import DEFAULT_MIN_AGE, GCReport, parse_duration
from nbs.admin.location import LocalLocation, parse_location
from nbs.admin.progress import ProgressFactory, terminal_progress
from nbs.admin.verify import VerifyReport, verify
from nbs.errors import NBSError
from nbs.stats import humanize_bytes

EXIT_OK, EXIT_PROBLEMS, EXIT_FAILED = 0, 1, 2


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbs", description="Maintenance of NBS stores: verify and gc.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check every table of a store (and with --reachable every chunk "
                                               "its root leads to)")
    check.add_argument("spec", help="a local store (path or nbs:path) or aws://table:bucket/store")
    check.add_argument("--reachable", action="store_true",
                       help="also walk the Noms values from the root and report missing chunks")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    gc = commands.add_parser("gc", help="delete tables no manifest names any more, and leftovers")
    gc.add_argument("spec", help="a local store, or aws://table:bucket (every store of the bucket)")
    gc.add_argument("--min-age", type=_duration, default=DEFAULT_MIN_AGE, metavar="DURATION",
                    help="delete only what is older than this and was found unreferenced this long ago "
                         "(default 24h; e.g. 90s, 30m, 7d)")
    gc.add_argument("--dry-run", action="store_true", help="print what would be deleted; change nothing")
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def run_verify(args: argparse.Namespace, out: TextIO, progress: ProgressFactory) -> int:
    report = verify(parse_location(args.spec, need_store=True), args.reachable, progress)
    if args.json:
        _print_json(report.to_json(), out)
    else:
        for problem in report.problems:
            print(problem, file=out)
        print(_verify_summary(report), file=out)
    return EXIT_OK if report.healthy else EXIT_PROBLEMS


def _verify_summary(report: VerifyReport) -> str:
    reached = f", {report.reachable} reachable chunks" if report.reachable is not None else ""
    verdict = "OK" if report.healthy else f"{len(report.problems)} problem(s)"
    return (f"{report.store}: {report.tables} tables, {report.chunks} chunks, {humanize_bytes(report.bytes)}"
            f"{reached}: {verdict}")


def run_gc(args: argparse.Namespace, out: TextIO, err: TextIO, progress: ProgressFactory) -> int:
    location = parse_location(args.spec, need_store=False)
    if args.min_age == 0 and not args.dry_run:
        print("nbs gc: warning: --min-age 0 deletes tables a commit in progress may be about to name, and "
              "tables readers may still use: run it only when no writer or reader is at work", file=err)
    if isinstance(location, LocalLocation):
        from nbs.admin.gc_local import collect_local

        report = collect_local(location, args.min_age, args.dry_run, progress)
    else:
        from nbs.admin.gc_aws import collect_aws

        report = collect_aws(location, args.min_age, args.dry_run, progress)
    for warning in report.warnings:
        print(f"nbs gc: warning: {warning}", file=err)
    for garbage, why in report.failed:
        print(f"nbs gc: could not delete {garbage}: {why}", file=err)
    if args.json:
        _print_json(report.to_json(), out)
    else:
        verb = "would delete" if report.dry_run else "deleted"
        for garbage in report.deleted:
            print(f"{verb} {garbage}", file=out)
        print(_gc_summary(report, verb), file=out)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _gc_summary(report: GCReport, verb: str) -> str:
    waiting = (f"; {len(report.waiting)} unreferenced, not yet old enough for --min-age "
               f"{_format_duration(report.min_age)}" if report.waiting else "")
    failed = f"; {len(report.failed)} failed" if report.failed else ""
    return (f"{report.location}: {verb} {len(report.deleted)}, freeing {humanize_bytes(report.freed)}"
            f"{waiting}{failed}; {report.live_tables} live tables")


def _format_duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _print_json(document: dict[str, Any], out: TextIO) -> None:
    json.dump(document, out, indent=2)
    out.write("\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None,
         progress: ProgressFactory = terminal_progress) -> int:
    """Run ``nbs``; returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "verify":
            return run_verify(args, out, progress)
        return run_gc(args, out, err, progress)
    except (NBSError, OSError) as error:
        print(f"nbs {args.command}: error: {error}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"nbs {args.command}: interrupted", file=err)
        return EXIT_FAILED
    except BrokenPipeError:  # whoever read our output stopped (``| head``): send the rest nowhere
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
