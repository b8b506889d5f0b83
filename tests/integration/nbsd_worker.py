"""Worker processes for the nbsd integration tests (each a real client process).

Modes (argv[1]):
  commit SPEC ENDPOINT WORKER COMMITS   linked-root commits, one JSON line per landed commit
  read   SPEC ENDPOINT ADDRFILE START FASTPATH   get_many the addresses (hex lines); print count and digest
  direct-commit SPEC WORKER COMMITS     the same commit loop straight on nbs (for comparison runs)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from nbs.chunk_store import ChunkStore


def commit_loop(store: ChunkStore, worker: int, commits: int) -> None:
    for i in range(commits):
        payload = [store.put(os.urandom(700) + b"w%d-%d-%d" % (worker, i, j)) for j in range(4)]
        while True:
            last = store.root()
            root = store.put(b"C" + bytes(last) + b"".join(payload) + b"w%d-%d" % (worker, i))
            if store.commit(root, last):
                print(json.dumps({"root": str(root), "chunks": [str(p) for p in payload]}), flush=True)
                break
            store.rebase()


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "commit":
        from nbsclient import connect

        spec, endpoint, worker, commits = argv[2], argv[3], int(argv[4]), int(argv[5])
        with connect(spec, endpoint, timeout=3.0, retries=40, memtable_size=1 << 16) as store:
            commit_loop(store, worker, commits)
    elif mode == "direct-commit":
        from nbs import open_store

        commit_loop(open_store(argv[2]), int(argv[3]), int(argv[4]))
    elif mode == "read":
        from nbsclient import connect

        spec, endpoint, addr_file, start, fast = argv[2], argv[3], argv[4], float(argv[5]), argv[6] == "1"
        addrs = [bytes.fromhex(line) for line in open(addr_file).read().split()]
        with connect(spec, endpoint, timeout=30.0, fast_path=fast) as store:
            time.sleep(max(0.0, start - time.time()))
            found = store.get_many(addrs)
            digest = hashlib.sha256(b"".join(found[a] for a in addrs if a in found)).hexdigest()
            print(json.dumps({"count": len(found), "digest": digest}), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
