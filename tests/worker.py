"""Worker processes for the multi-process tests (each a real client process).

Modes (argv[1]):
  commit SPEC ENDPOINT WORKER COMMITS              linked-root commits through nbsd
  direct-commit DIR WORKER COMMITS [MAX_TABLES]    the same straight on a local store
  aws-commit ENDPOINT TABLE BUCKET STORE WORKER COMMITS MAX_TABLES START [PAUSE]
                                                   the same on an AWS store (moto), starting at time START;
                                                   with PAUSE, a 2 KiB memtable and PAUSE seconds between
                                                   the puts and each commit
  read SPEC ENDPOINT ADDRFILE START FASTPATH       get_many the addresses (hex lines); print count and digest
  read-direct SPEC ADDRFILE START                  the same, opening the store directly (no daemon)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

from nbs.chunk_store import ChunkStore
from tests.linked import commit_loop


def main(argv: list[str]) -> None:
    mode = argv[1]
    store: ChunkStore
    if mode == "commit":
        from nbsclient import connect

        spec, endpoint, worker, commits = argv[2], argv[3], int(argv[4]), int(argv[5])
        # The daemon is killed and restarted while these writers start: wait for it at open as in requests.
        with connect(spec, endpoint, timeout=3.0, retries=40, memtable_size=1 << 16, connect_timeout=120.0) as store:
            commit_loop(store, worker, commits)
    elif mode == "direct-commit":
        import os

        from nbs.factory import new_local_store

        os.makedirs(argv[2], exist_ok=True)
        max_tables = int(argv[5]) if len(argv) > 5 else 192
        commit_loop(new_local_store(argv[2], 1 << 14, max_tables=max_tables), int(argv[3]), int(argv[4]))
    elif mode == "aws-commit":
        from nbs.aws_factory import AWSSettings, aws_clients, new_aws_store

        endpoint, table, bucket, name = argv[2:6]
        worker, commits, max_tables, start = int(argv[6]), int(argv[7]), int(argv[8]), float(argv[9])
        pause = float(argv[10]) if len(argv) > 10 else 0.0
        s3, ddb = aws_clients(AWSSettings(endpoint_url=endpoint).session(), endpoint)
        store = new_aws_store(table, name, bucket, s3, ddb, 1 << 11 if pause else 1 << 14, max_tables=max_tables)
        time.sleep(max(0.0, start - time.time()))  # start together, so the commits race
        commit_loop(store, worker, commits, pause)
    elif mode in ("read", "read-direct"):
        if mode == "read":
            from nbsclient import connect

            spec, endpoint, addr_file, start, fast = argv[2], argv[3], argv[4], float(argv[5]), argv[6] == "1"
            store = connect(spec, endpoint, timeout=30.0, fast_path=fast)
        else:
            from nbs.factory import open_store

            spec, addr_file, start = argv[2], argv[3], float(argv[4])
            store = open_store(spec)
        addrs = [bytes.fromhex(line) for line in open(addr_file).read().split()]
        time.sleep(max(0.0, start - time.time()))
        found = store.get_many(addrs)
        digest = hashlib.sha256(b"".join(found[a] for a in addrs if a in found)).hexdigest()
        print(json.dumps({"count": len(found), "digest": digest}), flush=True)
        store.close()
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
