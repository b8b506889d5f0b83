"""``nbsd status``: the daemon's ``stats`` reply as a page a person reads at a glance.

Sizes and times in human units; the cache's state with its reason; the busiest
stores only (``--json`` keeps every figure, including every store).
"""

from __future__ import annotations

from typing import Any

from nbsd.units import duration, ratio, size

TOP_STORES = 5


def activity(figures: dict[str, int]) -> int:
    """How busy a store has been: requests and writes, each commit counting as one."""
    return figures["get_requests"] + figures["tables_written"] + figures["commits"] + figures["commits_lost"]


class StatsReplyError(Exception):
    """A ``stats`` reply this page cannot read: from a daemon of another version, or a bug."""


def render(stats: dict[str, Any], top: int = TOP_STORES) -> str:
    """The page; ``StatsReplyError`` names the field a reply lacks or holds in another form."""
    try:
        return _page(stats, top)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
        raise StatsReplyError(f"the daemon's stats reply cannot be shown ({type(err).__name__}: {err}); "
                              "`nbsd stats` prints it as it is") from None


def _page(stats: dict[str, Any], top: int) -> str:
    cache, files, index, small = stats["cache"], stats["open_files"], stats["index_cache"], stats["small_table_cache"]
    policy, workers, uploads = stats["policy"], stats["chunk_workers"], stats["upload_memory"]
    served = cache["hits"] + cache["client_hits"]
    lines = [
        f"nbsd {stats['version']}, pid {stats['pid']}, up {duration(stats['uptime_s'])}, on {stats['endpoint']}",
        f"metrics: {'http://' + stats['metrics'] + '/metrics' if stats['metrics'] else 'off'}",
        f"local roots: {', '.join(policy['local_roots']) or 'none'}; AWS stores: "
        f"{', '.join(policy['aws_stores']) or 'none'}; mem store: {'allowed' if policy['allow_mem'] else 'off'}",
        f"sessions: {stats['sessions']}; requests: {_counts(stats['requests'])}",
        f"errors: {_counts(stats['errors']) or 'none'}",
        f"cache: {cache['state']}; {size(cache['bytes'])} of {size(cache['budget'])}, {cache['entries']} chunks; "
        f"hit ratio {ratio(served, served + cache['misses'])} ({cache['hits']} daemon hits, {cache['client_hits']} "
        f"client hits, {cache['misses']} misses, {stats['shared_fetches']} of them served from another request's "
        f"read in flight); {cache['evictions']} evicted, {cache['corrupt']} corrupt; "
        f"fills {cache['fills_deferred']} behind replies, {cache['fills_inline']} in them",
        f"index cache: {size(index['bytes'])} of {size(index['budget'])}, {index['tables']} tables; small tables: "
        f"{size(small['bytes'])} of {size(small['budget'])}, {small['tables']} tables",
        f"open files: {files['tables']} table files of {files['table_budget']} allowed (max_open_files "
        f"{files['budget']} - {files['reserved']} reserved - {files['threads']} threads); process descriptors "
        f"{files['fds']} of {files['limit']} (sockets and pipes included)",
        f"memory: {_memory(stats['memory'])}",
        f"chunk workers: {workers['running']} running of {workers['configured']}, {workers['failures']} failed",
        f"uploads in memory: {size(uploads['bytes'])} of {size(uploads['budget'])}, {uploads['refused']} parts "
        "refused as Busy",
        *([_chunk_parts(stats["chunk_parts"])] if "chunk_parts" in stats else []),  # none from daemons before it
        f"backend: {_counts(stats['backend']['requests']) or 'no requests'}; errors: "
        f"{_counts(stats['backend']['errors']) or 'none'}",
    ]
    stores = sorted(stats["stores"].items(), key=lambda item: (-activity(item[1]), item[0]))
    busy = [(key, fig) for key, fig in stores if activity(fig) or fig["sessions"]]
    if busy:
        lines.append(f"busiest stores ({min(top, len(busy))} of {len(stores)}):")
    for key, fig in busy[:top]:
        lines.append(f"  {key}: {fig['sessions']} sessions, {fig['chunks_requested']} chunks asked "
                     f"({fig['chunks_from_cache']} from cache, {fig['chunks_fetched']} fetched, "
                     f"{size(fig['bytes_fetched'])}{_shared(fig)}), {fig['tables_written']} tables written "
                     f"({size(fig['bytes_written'])}), {fig['commits']} commits, {fig['commits_lost']} lost")
    return "\n".join(lines) + "\n"


def _shared(fig: dict[str, Any]) -> str:
    """A store's chunks served from other requests' reads; daemons before this figure send none."""
    return f", {fig['chunks_shared']} from others' reads" if "chunks_shared" in fig else ""


def _chunk_parts(parts: dict[str, Any]) -> str:
    offered = (f"{parts['memories']} part memories mapped of {parts['most_memories']}, "
               f"{size(parts['memory_bytes'])} of {size(parts['most_memory_bytes'])}, taken at "
               f"{parts['parts_socket']}" if parts["parts_socket"] else "no part memory offered")
    return (f"parts of chunks received: {parts['shared_memory']} in clients' part memory, {parts['socket']} "
            f"through the socket ({offered})")


def _memory(memory: dict[str, int]) -> str:
    text = f"{size(memory['rss'])} resident, {memory['threads']} threads"
    if "heap_in_use" in memory:  # glibc's own figures (absent on other C libraries)
        text += f"; malloc heap {size(memory['heap_in_use'])} in use, {size(memory['heap_free'])} free"
    return text


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
