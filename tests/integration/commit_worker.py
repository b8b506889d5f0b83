"""A writer process for the multi-process commit test.

Each commit's root chunk links to the previous root, so the final root's chain
lists every commit that landed.  Prints one JSON line per successful commit.
"""

from __future__ import annotations

import json
import os
import sys

from nbs.factory import new_local_store


def main(directory: str, worker: int, commits: int, max_tables: int) -> None:
    store = new_local_store(directory, 1 << 14, max_tables=max_tables)
    for i in range(commits):
        payload = [store.put(os.urandom(300) + b"w%d-%d-%d" % (worker, i, j)) for j in range(5)]
        while True:
            last = store.root()
            root = store.put(b"C" + bytes(last) + b"".join(payload) + b"w%d-%d" % (worker, i))
            if store.commit(root, last):
                print(json.dumps({"root": str(root), "chunks": [str(p) for p in payload]}), flush=True)
                break


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
