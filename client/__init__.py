"""nbsclient: the thin ZeroMQ client of nbsd, with the same chunk-store API as ``nbs``."""
