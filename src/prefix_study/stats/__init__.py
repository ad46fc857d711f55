"""Reuse statistics of block traces (reuse fraction, hits per block, reuse
gaps, infinite-cache hit rate)."""

from prefix_study.stats.reuse import (
    indexed_accesses,
    per_block_hits,
    per_request_reuse,
    reuse_gaps,
    reuse_statistics,
    reuse_summary,
    scan_trace,
    write_reuse_summary,
)

__all__ = [
    "indexed_accesses",
    "per_block_hits",
    "per_request_reuse",
    "reuse_gaps",
    "reuse_statistics",
    "reuse_summary",
    "scan_trace",
    "write_reuse_summary",
]
