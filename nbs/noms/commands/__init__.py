"""The ``noms`` subcommands, one module per group; each exposes its ``Command`` declarations."""
