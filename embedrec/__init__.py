"""embedrec: embedding-based movie recommendation (ingest, train, recommend, tune, export)."""

__version__ = "0.1.0"
