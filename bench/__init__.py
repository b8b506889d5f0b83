"""Benchmarks for nbs-aws: run ``python -m bench`` (see README)."""
