"""Maintenance of stores: ``nbs verify`` (check every table, optionally every reachable chunk) and
``nbs gc`` (delete what no manifest names any more), for local directories and AWS buckets.

Neither goes through the daemon or a store's caches: both read storage directly,
so they see what is stored, not what a cache remembers.
"""
