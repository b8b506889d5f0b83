"""Logging to stderr in a form journald understands.

Under systemd (``$JOURNAL_STREAM`` set) each line starts with a ``<N>`` syslog
priority, which journald strips and records as the entry's priority; otherwise
lines carry a timestamp.  Credentials never reach the log: the daemon logs
spec keys and endpoints, never session objects or boto3 configuration.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    """The daemon's log level; AWS libraries stay at WARNING or above, whose DEBUG lines would drown it."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
