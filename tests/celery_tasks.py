"""The celery task of the worker-pool tests: tests/pool_app.py's task, with its stores opened at import."""

from __future__ import annotations

from typing import Any

from tests import pool_app
from tests.celery_app import app


@app.task(name="pool.task")  # type: ignore[untyped-decorator]
def run(which: str, n: int) -> dict[str, Any]:
    return pool_app.task(which, n)
