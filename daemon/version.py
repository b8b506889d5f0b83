"""The running nbsd's version, from the installed distribution's metadata (pyproject's one ``version``)."""

from __future__ import annotations

from importlib.metadata import version

DISTRIBUTION = "nbs-aws"
VERSION = version(DISTRIBUTION)
