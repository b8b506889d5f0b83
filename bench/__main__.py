"""Run the benchmarks: ``python -m bench [--quick] [--only reads,import]``.

Every figure is printed next to a baseline measured in the same run, as a
table at the end, and written as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench import aws, commits, import_export, reads, soak, sync, table_count, throughput, writes
from bench.common import Report, progress

SUITES = {"import": import_export.run, "writes": writes.run, "commits": commits.run, "reads": reads.run,
          "aws": aws.run, "sync": sync.run, "throughput": throughput.run, "tables": table_count.run,
          "soak": soak.run}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller data and shorter runs")
    parser.add_argument("--only", help=f"comma-separated suites: {', '.join(SUITES)}")
    parser.add_argument("--out", default=f"bench/results/bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SUITES)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="nbs-bench-", ignore_cleanup_errors=True) as scratch:
        # Every suite's working directories (and its daemons' and servers', through $TMPDIR) go in here, and
        # with it: a suite that stops halfway, or forgets one, leaves nothing behind.
        tempfile.tempdir = os.environ["TMPDIR"] = scratch
        for name in chosen:
            progress(f"== {name}")
            SUITES[name](report, args.quick)
    print(report.table())
    report.write_json(args.out)
    progress(f"results written to {args.out}")


if __name__ == "__main__":
    main()
