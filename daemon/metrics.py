"""The Prometheus ``/metrics`` endpoint: the daemon's own counters, read when scraped.

Nothing here runs on the request path: the collector reads the figures the
service, the cache, the store opener and ``Timings`` keep anyway, so serving
metrics costs the daemon nothing between scrapes.  The process's own figures
(CPU, memory, descriptors) come from ``prometheus_client``'s process collector.
README "Metrics" lists every series.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from nbs import chunk_workers
from nbs.upload_memory import UPLOAD_MEMORY
from nbsd.config import metrics_address
from nbsd.part_memory import MAPPED
from nbsd.service import Service
from nbsd.timings import BOUNDS
from nbsd.version import VERSION

log = logging.getLogger(__name__)


class DaemonCollector:
    """Every nbsd series, built from one look at the service's figures per scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        cache, opener = service.cache, service.opener
        info = InfoMetricFamily("nbsd_build", "the running nbsd", value={"version": VERSION})
        yield info

        requests = CounterMetricFamily("nbsd_requests", "requests served, by operation", labels=["op"])
        for op, count in sorted(service.requests.as_dict().items()):
            requests.add_metric([op], count)
        yield requests
        durations = HistogramMetricFamily(
            "nbsd_request_duration_seconds", "time from a request's arrival to its reply, by operation "
            "(single-chunk gets answered from the cache on the daemon's thread are counted, not timed)",
            labels=["op"])
        for op, series in sorted(service.timings.snapshot().items()):
            cumulative = series.cumulative()
            buckets = [(repr(bound), float(n)) for bound, n in zip(BOUNDS, cumulative, strict=False)]
            durations.add_metric([op], [*buckets, ("+Inf", float(cumulative[-1]))], series.total)
        yield durations
        errors = CounterMetricFamily("nbsd_errors", "error replies, by error code", labels=["kind"])
        for kind, count in sorted(service.errors.as_dict().items()):
            errors.add_metric([kind], count)
        yield errors

        counters = cache.counters
        hits = CounterMetricFamily("nbsd_cache_hits", "chunks served from the LMDB cache, by who read it "
                                   "(client: the clients' own fast path, as they report it)", labels=["reader"])
        hits.add_metric(["daemon"], counters.hits)
        hits.add_metric(["client"], counters.client_hits)
        yield hits
        yield CounterMetricFamily("nbsd_cache_misses", "chunks the cache did not have for the asking store; a "
                                  "client's own misses come to the daemon and are counted here",
                                  value=counters.misses)
        yield CounterMetricFamily("nbsd_cache_evictions", "chunks evicted to keep the cache within its budget",
                                  value=counters.evictions)
        yield CounterMetricFamily("nbsd_cache_corrupt", "damaged cache entries found and dropped",
                                  value=counters.corrupt)
        yield CounterMetricFamily("nbsd_cache_inserts", "chunks added to the cache", value=counters.inserts)
        yield GaugeMetricFamily("nbsd_cache_bytes", "estimated bytes the cache holds", value=cache.total_bytes())
        yield GaugeMetricFamily("nbsd_cache_budget_bytes", "the cache's byte budget (cache_size)", value=cache.budget)
        yield GaugeMetricFamily("nbsd_cache_entries", "chunks in the cache", value=cache.entries())
        filler = service.filler
        fills = CounterMetricFamily("nbsd_cache_fills", "cache fills of chunks read from the stores, by who wrote "
                                    "them (deferred: behind the reply; inline: the request, the queue being full)",
                                    labels=["how"])
        fills.add_metric(["deferred"], filler.deferred)
        fills.add_metric(["inline"], filler.inline)
        yield fills
        yield GaugeMetricFamily("nbsd_cache_fill_pending_bytes", "chunk bytes answered but not yet in the cache",
                                value=filler.pending_bytes)
        yield GaugeMetricFamily("nbsd_cache_degraded", "1 while the cache fails and reads go to the stores",
                                value=0 if cache.health.state == "ok" else 1)
        parts = CounterMetricFamily("nbsd_table_chunk_parts", "table_chunks parts received, by how their bytes "
                                    "came (shared_memory: the client's part memory; socket: ZeroMQ)", labels=["via"])
        for via in ("shared_memory", "socket"):
            parts.add_metric([via], service.chunk_parts[via])
        yield parts
        yield GaugeMetricFamily("nbsd_part_memories", "clients' part memories mapped (each holds a descriptor)",
                                value=MAPPED.held)
        yield GaugeMetricFamily("nbsd_part_memory_bytes", "bytes of clients' part memories mapped",
                                value=MAPPED.held_bytes)
        yield CounterMetricFamily("nbsd_shared_fetches", "chunks a request got from another request's backend read",
                                  value=service.shared_fetches)

        index_cache = opener.caches.index_cache
        yield GaugeMetricFamily("nbsd_index_cache_bytes", "bytes of parsed table indexes held in memory",
                                value=index_cache.total_size if index_cache else 0)
        yield GaugeMetricFamily("nbsd_index_cache_budget_bytes", "the index cache's budget (index_cache_size)",
                                value=index_cache.max_size if index_cache else 0)
        yield GaugeMetricFamily("nbsd_open_files", "table files held open", value=opener.open_files())
        yield GaugeMetricFamily("nbsd_open_files_budget", "table files that may be open: max_open_files less "
                                "the reserve and one per worker thread", value=opener.fd_budget)
        yield GaugeMetricFamily("nbsd_sessions", "open client sessions", value=len(service.sessions))
        workers = chunk_workers.pool()
        yield GaugeMetricFamily("nbsd_chunk_workers", "chunk worker processes running (verifying received tables)",
                                value=workers.running)
        yield CounterMetricFamily("nbsd_chunk_worker_failures", "chunk workers found dead or hung; their batches "
                                  "were done in the daemon's threads", value=workers.failures)

        yield GaugeMetricFamily("nbsd_upload_memory_bytes", "bytes of tables being received held in memory "
                                "(AWS and mem stores)", value=UPLOAD_MEMORY.held)
        yield GaugeMetricFamily("nbsd_upload_memory_budget_bytes", "the most they may hold (upload_memory)",
                                value=UPLOAD_MEMORY.limit or 0)
        yield CounterMetricFamily("nbsd_upload_memory_refusals", "parts refused as Busy because the tables "
                                  "being received held upload_memory", value=UPLOAD_MEMORY.refusals)

        calls, failed = opener.backend.snapshot()
        backend = CounterMetricFamily("nbsd_backend_requests", "S3 and DynamoDB API calls the daemon made",
                                      labels=["service", "operation"])
        for (aws_service, operation), count in sorted(calls.items()):
            backend.add_metric([aws_service, operation], count)
        yield backend
        backend_errors = CounterMetricFamily("nbsd_backend_errors", "S3 and DynamoDB API calls that ended in an "
                                             "error, by AWS error code", labels=["service", "operation", "code"])
        for (aws_service, operation, code), count in sorted(failed.items()):
            backend_errors.add_metric([aws_service, operation, code], count)
        yield backend_errors


class MetricsServer:
    """``/metrics`` over HTTP on its own thread, from a registry of the daemon's and the process's figures."""

    def __init__(self, address: str, service: Service) -> None:
        host, port = metrics_address(address)
        self.registry = CollectorRegistry()
        self.registry.register(DaemonCollector(service))
        ProcessCollector(registry=self.registry)
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, self.registry)
        log.info("metrics on http://%s/metrics", address)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
