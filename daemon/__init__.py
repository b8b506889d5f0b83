"""nbsd: the per-host caching sidecar daemon that serves NBS stores to worker processes."""
