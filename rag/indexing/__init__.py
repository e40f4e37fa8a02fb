"""Indexing a change, for every backend: scan (what changed), embed (here or on Ray), distributed (the Ray ingest)."""
