"""Figures render to PNG + SVG from small frames, reproducibly."""

from __future__ import annotations

import polars as pl
import pytest

from prefix_study.config.schema import MixConfig
from prefix_study.replay.engine_capacity import engine_vs_replay
from prefix_study.figures import (
    plot_engine_vs_replay,
    plot_hit_rate_curves,
    plot_hit_rate_vs_capacity,
    plot_mixed_comparison,
    plot_reuse_cdfs,
)
from prefix_study.mixed import mixed_hit_rate_table
from prefix_study.replay import encode_trace
from prefix_study.replay.sweep import HIT_RATE_SCHEMA, hit_rate_rows
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace
from prefix_study.stats import reuse_statistics


@pytest.fixture(scope="module")
def traces():
    return {(w, bs): synthetic_trace(SyntheticTraceConfig(num_requests=80, seed=bs + i, workload=w))
            for i, w in enumerate(("chat", "qa")) for bs in (16, 32)}


def assert_written(paths):
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]


def test_reuse_cdfs(tmp_path, traces):
    cdfs = pl.concat([reuse_statistics(f.lazy(), w, bs)[1] for (w, bs), f in traces.items()])
    first = plot_reuse_cdfs(cdfs, tmp_path / "a/reuse_cdfs")
    assert_written(first)
    second = plot_reuse_cdfs(cdfs, tmp_path / "b/reuse_cdfs")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_hit_rate_vs_capacity(tmp_path, traces):
    rows = []
    for (w, bs), f in traces.items():
        rows += hit_rate_rows(encode_trace(f), w, bs, ["lru", "fifo", "belady"], ["block", "prefix"], [16, 64, 256])
    table = pl.DataFrame(rows, schema=HIT_RATE_SCHEMA)
    summary = pl.DataFrame([reuse_statistics(f.lazy(), w, bs)[0] for (w, bs), f in traces.items()])
    assert_written(plot_hit_rate_vs_capacity(table, tmp_path / "hit_rates", summary))


def test_hit_rate_curves(tmp_path, traces):
    from prefix_study.replay.curves import curve_frame

    table = pl.concat([curve_frame(encode_trace(f), w, bs, ["lru", "fifo", "wa_prob", "belady"], ["block", "prefix"])
                       for (w, bs), f in traces.items()])
    summary = pl.DataFrame([reuse_statistics(f.lazy(), w, bs)[0] for (w, bs), f in traces.items()])
    first = plot_hit_rate_curves(table, tmp_path / "a/curves", summary)
    assert_written(first)
    assert first[0].read_bytes() == plot_hit_rate_curves(table, tmp_path / "b/curves", summary)[0].read_bytes()


def test_mixed_comparison(tmp_path, traces):
    t = mixed_hit_rate_table({"chat": traces[("chat", 32)], "qa": traces[("qa", 32)]},
                             MixConfig(capacities=[32, 256]))
    assert_written(plot_mixed_comparison(t, tmp_path / "mixed"))


def test_engine_vs_replay(tmp_path):
    engine = pl.DataFrame({"workload": ["a", "a", "b"], "block_size": [32, 32, 32],
                           "num_prompt_tokens": [100, 300, 64], "num_cached_tokens": [0, 96, 32],
                           "reuse_fraction": [0.0, 0.32, 0.5]})
    rep = pl.DataFrame({"workload": ["a", "b"], "block_size": [32, 32], "hits": [3, 1]})
    table = engine_vs_replay(engine, rep)
    assert table["engine_hit_rate"].to_list() == [96 / 400, 0.5]
    assert table["replay_hit_rate"].to_list() == [96 / 400, 0.5]
    assert_written(plot_engine_vs_replay(table, tmp_path / "engine"))
