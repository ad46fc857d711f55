"""Statistics stage: reuse statistics over every trace of the sweep (rule `reuse_stats`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

from prefix_study.stats.reuse import write_reuse_summary


def run(traces: Mapping[tuple[str, int], str | Path], out: str | Path, md: str | Path,
        cdfs: str | Path) -> pl.DataFrame:
    """traces: {(workload, block_size): trace path}; writes
    `stats/reuse_summary.{parquet,md}` and `stats/reuse_cdfs.parquet`."""
    return write_reuse_summary(traces, out, md, cdfs)
