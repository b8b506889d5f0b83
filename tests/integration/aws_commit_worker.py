"""A writer process for the multi-process AWS commit test (see commit_worker.py for the linked-root scheme)."""

from __future__ import annotations

import json
import os
import sys
import time

from nbs.aws_factory import AWSSettings, aws_clients, new_aws_store


def main(endpoint: str, table: str, bucket: str, name: str, worker: int, commits: int, max_tables: int,
         start_at: float) -> None:
    settings = AWSSettings(endpoint_url=endpoint)
    s3, ddb = aws_clients(settings.session(), endpoint)
    store = new_aws_store(table, name, bucket, s3, ddb, 1 << 14, max_tables=max_tables)
    time.sleep(max(0.0, start_at - time.time()))  # start together, so the commits race
    for i in range(commits):
        payload = [store.put(os.urandom(300) + b"w%d-%d-%d" % (worker, i, j)) for j in range(5)]
        lost = 0
        while True:
            last = store.root()
            root = store.put(b"C" + bytes(last) + b"".join(payload) + b"w%d-%d" % (worker, i))
            if store.commit(root, last):
                print(json.dumps({"root": str(root), "chunks": [str(p) for p in payload], "lost": lost}), flush=True)
                break
            lost += 1


if __name__ == "__main__":
    main(*sys.argv[1:5], *map(int, sys.argv[5:8]), float(sys.argv[8]))
