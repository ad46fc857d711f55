"""Mixed workload: interleaving and workload-aware LRU."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import pytest

from prefix_study.config.schema import MixConfig, WorkloadConfig
from prefix_study.io import write_parquet
from prefix_study.mixed import choose_cache_friendly, interleave_traces, mixed_hit_rate_table, write_mixed_hit_rates
from prefix_study.replay import encode_trace, replay
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests


def order(frame):
    return frame["request_id"].unique(maintain_order=True).to_list()


def test_round_robin_with_burst_keeps_requests_whole():
    a = trace_from_requests([[1, 2], [3], [4, 5, 6]], workload="a")
    b = trace_from_requests([[7], [8, 9]], workload="b", times=[0.5, 0.7])
    mixed = interleave_traces({"a": a, "b": b}, "round_robin", burst=2)
    assert order(mixed) == ["a-0", "a-1", "b-0", "b-1", "a-2"]
    assert mixed.height == a.height + b.height
    assert mixed.filter(pl.col("request_id") == "a-2")["position"].to_list() == [0, 1, 2]
    assert order(interleave_traces({"a": a, "b": b}, "round_robin", 1)) == ["a-0", "b-0", "a-1", "b-1", "a-2"]


def test_timestamp_pattern_merges_by_arrival():
    a = trace_from_requests([[1], [2], [3]], workload="a", times=[0.0, 1.0, 2.0])
    b = trace_from_requests([[4], [5]], workload="b", times=[0.5, 1.0])
    assert order(interleave_traces({"a": a, "b": b}, "timestamp")) == ["a-0", "b-0", "a-1", "b-1", "a-2"]


def test_choose_cache_friendly_precedence():
    rates = {"a": 0.5, "b": 0.1, "c": 0.3}
    assert choose_cache_friendly(rates, threshold=0.25) == ["a", "c"]
    assert choose_cache_friendly(rates, flags={"a": False, "b": True}, threshold=0.25) == ["b", "c"]
    assert choose_cache_friendly(rates, listed=["b"], flags={"b": False}) == ["b"]
    with pytest.raises(ValueError, match="unknown"):
        choose_cache_friendly(rates, listed=["zzz"])


@pytest.fixture(scope="module")
def frames():
    chat = synthetic_trace(SyntheticTraceConfig(num_requests=200, seed=1, workload="chat"))
    once = synthetic_trace(SyntheticTraceConfig(num_requests=150, seed=2, workload="once", followup_probability=0.0,
                                                document_probability=0.0, num_system_prompts=10_000))
    return {"chat": chat, "once": once}


def test_workload_aware_lru(frames):
    cfg = MixConfig(capacities=[64, 512], block_size=16, semantics=["block", "prefix"])
    table = mixed_hit_rate_table(frames, cfg)
    assert set(table["policy"]) == {"lru", "fifo", "wa_prob", "wa_lru"}
    assert table.height == 2 * 2 * 4 * 3
    for (sem, cap), g in table.group_by("semantics", "capacity_blocks"):
        friendly = g["friendly_workloads"][0].split(",") if g["friendly_workloads"][0] else []
        wa = g.filter(pl.col("policy") == "wa_lru")
        for row in wa.iter_rows(named=True):
            if row["workload"] not in friendly and row["workload"] != "all" and sem == "block":
                assert row["hits"] == 0  # bypassed: always miss
        # Accesses do not depend on the policy.
        assert g.group_by("workload").agg(pl.col("accesses").n_unique())["accesses"].to_list() == [1, 1, 1]
        # Friendly = single-workload LRU hit rate >= threshold.
        single = g.filter(pl.col("workload") != "all").unique("workload")
        assert sorted(single.filter(pl.col("single_hit_rate") >= cfg.friendly_threshold)["workload"]) == friendly
    # With only `chat` admitted, block-semantics WA-LRU equals LRU over chat's
    # requests alone; under prefix semantics the others still hold blocks while
    # they run, which only stops mattering once capacity never binds.
    for cap, sems in ((64, ("block",)), (100_000, ("block", "prefix"))):
        t = mixed_hit_rate_table(frames, replace(cfg, cache_friendly=["chat"], capacities=[cap]))
        wa = t.filter((pl.col("policy") == "wa_lru") & (pl.col("workload") == "chat"))
        for sem in sems:
            expected = replay(encode_trace(frames["chat"]), "lru", cap, sem).hits
            assert wa.filter(pl.col("semantics") == sem)["hits"].item() == expected
    # Under prefix semantics a request that is not admitted keeps nothing it computed.
    t = mixed_hit_rate_table(frames, replace(cfg, cache_friendly=["chat"], capacities=[100_000],
                                             semantics=["prefix"]))
    once = t.filter((pl.col("policy") == "wa_lru") & (pl.col("workload") == "once"))["hits"].item()
    lru_once = t.filter((pl.col("policy") == "lru") & (pl.col("workload") == "once"))["hits"].item()
    assert once < lru_once


def test_all_friendly_equals_lru(frames):
    cfg = MixConfig(capacities=[128], cache_friendly=["chat", "once"], semantics=["prefix"])
    t = mixed_hit_rate_table(frames, cfg)
    lru = t.filter(pl.col("policy") == "lru").sort("workload")["hits"].to_list()
    wa = t.filter(pl.col("policy") == "wa_lru").sort("workload")["hits"].to_list()
    assert lru == wa


def test_write_mixed_hit_rates_uses_workload_flags(tmp_path, frames):
    paths = {}
    for w, f in frames.items():
        paths[w] = tmp_path / f"{w}.parquet"
        write_parquet(f, paths[w])
    cfgs = {"chat": WorkloadConfig(kind="chat_multi", cache_friendly=False), "once": WorkloadConfig(kind="qa")}
    out = tmp_path / "mixed/hit_rates.parquet"
    table = write_mixed_hit_rates(paths, MixConfig(capacities=[256], friendly_threshold=0.0), cfgs,
                                  out, tmp_path / "mixed/hit_rates.md")
    assert set(table["friendly_workloads"]) == {"once"}
    assert pl.read_parquet(out).equals(table)
    assert {"policy", "workload", "capacity_blocks", "accesses", "hits", "hit_rate"} <= set(table.columns)
    assert "wa_lru" in (tmp_path / "mixed/hit_rates.md").read_text()


def test_cost_aware_baseline_takes_the_cost_model(frames):
    """cost_lru as a mixed baseline replays with the configured cost model's
    recompute costs at mix.block_size, as the replay stage does."""
    from prefix_study.config.compose import compose_config
    from prefix_study.cost import CostModel
    from prefix_study.replay import replay_hit_mask

    cm = CostModel.from_config(compose_config([]))
    cfg = MixConfig(capacities=[64], block_size=16, semantics=["prefix"], baselines=["cost_lru"])
    table = mixed_hit_rate_table(frames, cfg, cost_model=cm)
    mixed = encode_trace(interleave_traces(frames, cfg.pattern, cfg.burst))
    hits = replay_hit_mask(mixed, "cost_lru", 64, "prefix", cm, 16)
    row = table.filter((pl.col("policy") == "cost_lru") & (pl.col("workload") == "all"))
    assert row["hits"].item() == int((hits & mixed.looked_up).sum())
    stand_in = replay_hit_mask(mixed, "cost_lru", 64, "prefix")
    assert int((stand_in & mixed.looked_up).sum()) != row["hits"].item()  # so the cost source shows
