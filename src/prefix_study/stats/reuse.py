"""Reuse statistics of a block trace (polars; lazy scans of the Parquet trace).

Definitions (per workload x block size):
- an access *reuses* its block if the block's hash occurred in an earlier
  request; for chained traces this is exactly an infinite cache's hit, so
  reused / looked-up accesses is the infinite-cache hit rate, the upper bound
  of every replay;
- reuse fraction of a request: reused / looked-up blocks of that request
  (requests without a full block are left out); where the trace carries
  `engine_hit`, the engine-measured fraction is engine hits / looked-up blocks;
- hits per block: per distinct hash, its looked-up accesses after the first
  request that used it;
- reuse gap: between consecutive uses of a block by different requests, in
  seconds and in requests strictly between them; counted at looked-up uses.

Only rows with `lookup` true (all rows if the column is absent) count as
accesses; every row counts as a use that makes a block "seen".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from prefix_study.io import markdown_table, write_parquet, write_text

QUANTILES = (0.5, 0.9, 0.99)
#: Quantile grid of the CDF frames (201 points).
CDF_GRID = tuple(np.round(np.linspace(0.0, 1.0, 201), 4))


def scan_trace(path: Path | str) -> pl.LazyFrame:
    """Lazy scan of a trace with the optional columns filled in."""
    lf = pl.scan_parquet(path)
    names = lf.collect_schema().names()
    if "lookup" not in names:
        lf = lf.with_columns(pl.lit(True).alias("lookup"))
    if "engine_hit" not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.Boolean).alias("engine_hit"))
    return lf


def indexed_accesses(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Accesses with `request_idx` (order of the request in the trace) and
    `reused` (block used by an earlier request)."""
    new_request = (
        (pl.col("position") == 0) | (pl.col("request_id") != pl.col("request_id").shift(1))
    ).fill_null(True)
    return (
        lf.select("request_id", "workload", "time_s", "position", "block_hash", "engine_hit", "lookup")
        .with_columns(pl.col("lookup").fill_null(True))
        .with_columns((new_request.cast(pl.Int64).cum_sum() - 1).alias("request_idx"))
        .with_columns(
            (pl.col("request_idx") > pl.col("request_idx").min().over("block_hash")).alias("reused")
        )
    )


def per_request_reuse(accesses: pl.LazyFrame) -> pl.LazyFrame:
    """One row per request: blocks, reused_blocks, reuse_fraction, and the
    engine-measured engine_hit_blocks / engine_reuse_fraction where present."""
    looked = pl.col("lookup")
    return (
        accesses.group_by("request_idx", maintain_order=True)
        .agg(
            pl.col("request_id").first(),
            pl.col("workload").first(),
            pl.col("time_s").first(),
            looked.sum().cast(pl.Int64).alias("blocks"),
            (pl.col("reused") & looked).sum().cast(pl.Int64).alias("reused_blocks"),
            (pl.col("engine_hit").fill_null(False) & looked).sum().cast(pl.Int64).alias("engine_hit_blocks"),
            (pl.col("engine_hit").is_not_null() & looked).sum().cast(pl.Int64).alias("engine_measured_blocks"),
        )
        .with_columns(
            pl.when(pl.col("blocks") > 0)
            .then(pl.col("reused_blocks") / pl.col("blocks"))
            .alias("reuse_fraction"),
            pl.when(pl.col("engine_measured_blocks") > 0)
            .then(pl.col("engine_hit_blocks") / pl.col("engine_measured_blocks"))
            .alias("engine_reuse_fraction"),
        )
    )


def per_block_hits(accesses: pl.LazyFrame) -> pl.LazyFrame:
    """One row per distinct block: uses (all rows) and hits (looked-up uses
    after the first request that used it)."""
    return accesses.group_by("block_hash").agg(
        pl.len().cast(pl.Int64).alias("uses"),
        (pl.col("reused") & pl.col("lookup")).sum().cast(pl.Int64).alias("hits"),
    )


def reuse_gaps(accesses: pl.LazyFrame) -> pl.LazyFrame:
    """One row per looked-up reuse: gap_s and gap_requests since the block's
    previous use by another request."""
    return (
        accesses.select("block_hash", "time_s", "request_idx", "lookup")
        .with_columns(
            pl.col("time_s").diff().over("block_hash").alias("gap_s"),
            pl.col("request_idx").diff().over("block_hash").alias("request_step"),
        )
        .filter(pl.col("lookup") & (pl.col("request_step") > 0))
        .select("block_hash", "gap_s", (pl.col("request_step") - 1).alias("gap_requests"))
    )


def _quantile_stats(values: np.ndarray, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {f"{prefix}_mean": float(values.mean()) if values.size else None}
    qs = np.quantile(values, QUANTILES, method="inverted_cdf") if values.size else [None] * len(QUANTILES)
    for q, v in zip(QUANTILES, qs):
        out[f"{prefix}_p{int(round(q * 100))}"] = None if v is None else float(v)
    return out


def _cdf_rows(values: np.ndarray, workload: str, block_size: int, metric: str) -> pl.DataFrame:
    grid = np.array(CDF_GRID)
    vals = (
        np.quantile(values, grid, method="inverted_cdf").astype(np.float64)
        if values.size else np.full(grid.size, np.nan)
    )
    return pl.DataFrame(
        {
            "workload": [workload] * grid.size,
            "block_size": [block_size] * grid.size,
            "metric": [metric] * grid.size,
            "quantile": grid,
            "value": vals,
            "count": [int(values.size)] * grid.size,
        },
        schema={"workload": pl.String, "block_size": pl.Int64, "metric": pl.String,
                "quantile": pl.Float64, "value": pl.Float64, "count": pl.Int64},
    )


def reuse_statistics(lf: pl.LazyFrame, workload: str, block_size: int) -> tuple[dict[str, Any], pl.DataFrame]:
    """The summary row and the CDF frame of one trace."""
    accesses = indexed_accesses(lf).collect()
    requests = per_request_reuse(accesses.lazy()).collect()
    blocks = per_block_hits(accesses.lazy()).collect()
    gaps = reuse_gaps(accesses.lazy()).collect()
    lookups = int(accesses["lookup"].sum())
    infinite_hits = int((accesses["reused"] & accesses["lookup"]).sum())
    engine = accesses.filter(pl.col("lookup") & pl.col("engine_hit").is_not_null())
    del accesses

    with_blocks = requests.filter(pl.col("blocks") > 0)
    frac = with_blocks["reuse_fraction"].to_numpy()
    eng_frac = with_blocks["engine_reuse_fraction"].drop_nulls().to_numpy()
    hits = blocks["hits"].to_numpy()
    gap_s = gaps["gap_s"].to_numpy()
    gap_r = gaps["gap_requests"].to_numpy()

    row: dict[str, Any] = {
        "workload": workload,
        "block_size": block_size,
        "requests": requests.height,
        "requests_with_blocks": with_blocks.height,
        "accesses": lookups,
        "distinct_blocks": blocks.height,
        "infinite_hits": infinite_hits,
        "infinite_hit_rate": infinite_hits / lookups if lookups else None,
        "engine_measured_accesses": engine.height,
        "engine_hit_rate": float(engine["engine_hit"].mean()) if engine.height else None,
    }
    row.update(_quantile_stats(frac, "reuse_fraction"))
    row["requests_with_reuse"] = float((frac > 0).mean()) if frac.size else None
    row.update(_quantile_stats(eng_frac, "engine_reuse_fraction"))
    row.update(_quantile_stats(hits, "hits_per_block"))
    row["hits_per_block_max"] = int(hits.max()) if hits.size else None
    row["blocks_never_reused"] = float((hits == 0).mean()) if hits.size else None
    row["reuse_gaps"] = int(gap_s.size)
    row.update(_quantile_stats(gap_s, "gap_s"))
    row.update(_quantile_stats(gap_r, "gap_requests"))

    cdfs = pl.concat(
        [
            _cdf_rows(frac, workload, block_size, "reuse_fraction"),
            _cdf_rows(eng_frac, workload, block_size, "engine_reuse_fraction"),
            _cdf_rows(hits.astype(np.float64), workload, block_size, "hits_per_block"),
            _cdf_rows(gap_s, workload, block_size, "gap_s"),
            _cdf_rows(gap_r.astype(np.float64), workload, block_size, "gap_requests"),
        ]
    )
    return row, cdfs


def reuse_summary(trace_paths: Mapping[tuple[str, int], Path | str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Summary (one row per workload x block size) and CDF frames of many traces."""
    rows, cdfs = [], []
    for (workload, block_size) in sorted(trace_paths):
        row, cdf = reuse_statistics(scan_trace(trace_paths[(workload, block_size)]), workload, int(block_size))
        rows.append(row)
        cdfs.append(cdf)
    summary = pl.DataFrame(rows, infer_schema_length=None)
    # Columns that are null for every trace still get a numeric type.
    summary = summary.with_columns(
        [pl.col(c).cast(pl.Float64) for c, t in summary.schema.items() if t == pl.Null]
    )
    return summary, pl.concat(cdfs) if cdfs else pl.DataFrame()


def summary_markdown(summary: pl.DataFrame) -> str:
    """Three small tables: reuse, hits per block, reuse gaps."""
    key = ["workload", "block_size"]
    parts = [
        ("Reuse per request (infinite cache)", key + [
            "requests", "accesses", "infinite_hit_rate", "engine_hit_rate", "reuse_fraction_mean",
            "reuse_fraction_p50", "reuse_fraction_p90", "reuse_fraction_p99", "requests_with_reuse"]),
        ("Hits per block", key + [
            "distinct_blocks", "hits_per_block_mean", "hits_per_block_p50", "hits_per_block_p90",
            "hits_per_block_p99", "hits_per_block_max", "blocks_never_reused"]),
        ("Reuse gaps", key + [
            "reuse_gaps", "gap_s_mean", "gap_s_p50", "gap_s_p90", "gap_s_p99",
            "gap_requests_mean", "gap_requests_p50", "gap_requests_p90", "gap_requests_p99"]),
    ]
    out = []
    for title, cols in parts:
        out.append(f"### {title}\n\n" + markdown_table(summary.select(cols)))
    return "\n".join(out)


def write_reuse_summary(
    trace_paths: Mapping[tuple[str, int], Path | str],
    out_parquet: Path | str,
    out_md: Path | str,
    out_cdfs: Path | str | None = None,
) -> pl.DataFrame:
    """Stage entry point: `stats/reuse_summary.parquet` + `.md`, and the CDF
    frame `stats/reuse_cdfs.parquet` (default: next to the summary).

    trace_paths: {(workload, block_size): traces/{workload}/b{bs}.parquet}.
    """
    summary, cdfs = reuse_summary(trace_paths)
    write_parquet(summary, out_parquet)
    write_parquet(cdfs, out_cdfs if out_cdfs is not None else Path(out_parquet).with_name("reuse_cdfs.parquet"))
    write_text("# Reuse statistics\n\n" + summary_markdown(summary), out_md)
    return summary
