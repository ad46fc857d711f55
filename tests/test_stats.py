"""Reuse statistics on hand-made traces with known answers."""

from __future__ import annotations

import math

import polars as pl
import pytest

from prefix_study.io import write_parquet
from prefix_study.replay import encode_trace, infinite_cache_hits
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests
from prefix_study.stats import (
    indexed_accesses,
    per_block_hits,
    per_request_reuse,
    reuse_gaps,
    reuse_statistics,
    write_reuse_summary,
)


@pytest.fixture
def small_trace():
    # r0 [1,2] t=0; r1 [1,2,3] t=1; r2 [1,4] t=3; r3 [5, 2] t=6 (last block
    # not looked up). Hashes used as given (stats do not need chaining).
    frame = trace_from_requests(
        [[1, 2], [1, 2, 3], [1, 4], [5, 2]], chain=False, times=[0.0, 1.0, 3.0, 6.0],
        lookup=[[True, True], [True, True, True], [True, True], [True, False]],
    )
    engine = [False, False, True, True, False, None, None, None, None]
    return frame.with_columns(pl.Series("engine_hit", engine, dtype=pl.Boolean))


def test_per_request_reuse(small_trace):
    req = per_request_reuse(indexed_accesses(small_trace.lazy())).collect()
    assert req["blocks"].to_list() == [2, 3, 2, 1]
    assert req["reused_blocks"].to_list() == [0, 2, 1, 0]
    assert req["reuse_fraction"].to_list() == [0.0, 2 / 3, 0.5, 0.0]
    assert req["engine_reuse_fraction"].to_list() == [0.0, 2 / 3, None, None]


def test_per_block_hits_and_gaps(small_trace):
    acc = indexed_accesses(small_trace.lazy())
    blocks = per_block_hits(acc).collect().sort("block_hash")
    # block 2 is used again by r3 but that use is not looked up: no hit.
    assert dict(zip(blocks["block_hash"].to_list(), blocks["hits"].to_list())) == {1: 2, 2: 1, 3: 0, 4: 0, 5: 0}
    gaps = reuse_gaps(acc).collect().sort("block_hash", "gap_s")
    assert gaps.rows() == [(1, 1.0, 0), (1, 2.0, 0), (2, 1.0, 0)]


def test_summary_row(small_trace):
    row, cdfs = reuse_statistics(small_trace.lazy(), "w", 16)
    assert row["requests"] == 4 and row["accesses"] == 8 and row["distinct_blocks"] == 5
    assert row["infinite_hits"] == 3 and row["infinite_hit_rate"] == 3 / 8
    assert math.isclose(row["reuse_fraction_mean"], (0 + 2 / 3 + 0.5 + 0) / 4)
    assert row["requests_with_reuse"] == 0.5
    assert row["hits_per_block_max"] == 2 and row["blocks_never_reused"] == 3 / 5
    assert row["engine_hit_rate"] == 2 / 5
    assert row["gap_requests_p99"] == 0 and row["gap_s_mean"] == pytest.approx(4 / 3)
    assert set(cdfs["metric"].unique()) == {"reuse_fraction", "engine_reuse_fraction", "hits_per_block",
                                            "gap_s", "gap_requests"}
    assert cdfs.group_by("metric").len()["len"].to_list() == [201] * 5


def test_infinite_hit_rate_equals_replay_bound():
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=300, seed=5))
    row, _ = reuse_statistics(frame.lazy(), "s", 16)
    assert row["infinite_hits"] == infinite_cache_hits(encode_trace(frame))


def test_write_reuse_summary(tmp_path, small_trace):
    paths = {}
    for w, bs, seed in (("a", 16, 1), ("a", 32, 2), ("b", 16, 3)):
        paths[(w, bs)] = tmp_path / f"traces/{w}/b{bs}.parquet"
        write_parquet(synthetic_trace(SyntheticTraceConfig(num_requests=50, seed=seed, workload=w)), paths[(w, bs)])
    out = tmp_path / "stats/reuse_summary.parquet"
    summary = write_reuse_summary(paths, out, tmp_path / "stats/reuse_summary.md")
    assert summary.select("workload", "block_size").rows() == [("a", 16), ("a", 32), ("b", 16)]
    assert pl.read_parquet(out).equals(summary)
    assert summary["engine_hit_rate"].dtype == pl.Float64  # all null, still typed
    cdfs = pl.read_parquet(tmp_path / "stats/reuse_cdfs.parquet")
    assert cdfs.height == 3 * 5 * 201
    assert "Hits per block" in (tmp_path / "stats/reuse_summary.md").read_text()
