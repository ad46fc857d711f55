"""Eviction policies inside vLLM's block pool (engine/eviction.py) against
their prefix replays, one request at a time at a binding capacity."""

from __future__ import annotations

import random

import polars as pl
import pytest

from prefix_study.engine import check_request_stream, drive
from prefix_study.engine.eviction import eviction_names, install_eviction_policy
from prefix_study.workloads.mixed_stream import mixed_request_stream
from prefix_study.mixed.workload_aware import wa_lru_hit_mask
from prefix_study.replay.per_request import per_request_from_mask, per_request_hits
from prefix_study.replay.trace import encode_trace
from prefix_study.traces.derive import check_engine_consistency, derive_block_trace

pytestmark = pytest.mark.engine

MAX_LEN = 640


def workload_stream(workload: str, seed: int, conversations: int, turns: int,
                    system_tokens: int = 70) -> pl.DataFrame:
    """Conversations sharing a system prompt; ids `<workload>-NNNNNN-NN`."""
    rng = random.Random(seed)
    system = [rng.randrange(50000) for _ in range(system_tokens)]
    rows = []
    for c in range(conversations):
        prompt = system + [rng.randrange(50000) for _ in range(rng.randrange(20, 90))]
        for t in range(turns):
            reply = [rng.randrange(50000) for _ in range(rng.randrange(5, 40))]
            rows.append({
                "request_id": f"{workload}-{c:06d}-{t:02d}", "workload": workload,
                "conversation_id": f"{workload}-{c:06d}", "turn_index": t,
                "arrival_s": c * 0.05 if t == 0 else 0.0,
                "think_time_s": 0.0 if t == 0 else rng.random() * 0.2,
                "prompt_token_ids": list(prompt), "scripted_output_token_ids": reply,
            })
            prompt = prompt + reply + [rng.randrange(50000) for _ in range(rng.randrange(10, 60))]
    return pl.DataFrame(rows, schema_overrides={"turn_index": pl.Int32,
                                                "prompt_token_ids": pl.List(pl.Int32),
                                                "scripted_output_token_ids": pl.List(pl.Int32)})


def run(engine, stream):
    res = drive(engine, check_request_stream(stream, MAX_LEN, "script").frame, progress=False)
    trace = derive_block_trace(res.requests, 32, engine.none_hash_seed(), engine_block_size=32)
    report = check_engine_consistency(res.requests, res.kv_events, trace, 32)
    assert report["ok"], report
    assert res.kv_events.filter(pl.col("event") == "removed").height > 0, "capacity did not bind"
    return res, trace


def engine_vs(predicted: pl.DataFrame, requests: pl.DataFrame) -> pl.DataFrame:
    joined = predicted.join(requests.select("request_id", "num_cached_tokens"), on="request_id")
    assert joined.height == requests.height
    return joined.with_columns((pl.col("hit_blocks") * 32).alias("predicted"))


def test_in_engine_fifo_equals_the_fifo_prefix_replay(engine_factory):
    capacity = 40
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=1,
                            eviction="fifo")
    assert engine.eviction.name == "fifo"
    res, trace = run(engine, workload_stream("chat", seed=5, conversations=8, turns=3))
    fifo = engine_vs(per_request_hits(trace, capacity - 1, "fifo", "prefix"), res.requests)
    assert fifo["predicted"].to_list() == fifo["num_cached_tokens"].to_list()
    assert fifo["num_cached_tokens"].sum() > 0
    # The policy is really in force: vLLM's LRU would have served other hits.
    lru = engine_vs(per_request_hits(trace, capacity - 1, "lru", "prefix"), res.requests)
    assert lru["predicted"].to_list() != lru["num_cached_tokens"].to_list()


def test_engine_table_uses_the_policys_own_replay(engine_factory, tmp_path):
    """replay/engine_sweep.py on an in-engine fifo run (as the replay stage
    reads it from the engine stage's files): the sequential replay is fifo's
    vLLM-pool replay and equals vLLM; the batched replay (LRU only) is null."""
    from omegaconf import OmegaConf

    from prefix_study.config.schema import EngineConfig
    from prefix_study.engine.stage import run_workload
    from prefix_study.replay.engine_sweep import EngineRunFiles, compare_engine_run
    from prefix_study.traces.stage import run as derive_trace

    capacity = 40
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=1,
                            eviction="fifo")
    cfg = OmegaConf.structured(EngineConfig(block_sizes=[32], capacity_blocks=capacity, max_model_len=MAX_LEN,
                                            max_num_seqs=1, eviction="fifo"))
    run_dir = tmp_path / "chat" / "b32"
    run_workload(engine, cfg, workload_stream("chat", seed=5, conversations=8, turns=3), "chat", run_dir,
                 progress=False)
    assert derive_trace("chat", None, 32, run_dir, tmp_path / "t.parquet", tmp_path / "t.check.json")["ok"]
    (row,) = compare_engine_run(EngineRunFiles("chat", 32, capacity, run_dir, tmp_path / "t.parquet")).to_dicts()
    assert row["requests_differ_sequential"] == 0 and row["engine_hit_rate"] > 0
    assert row["sequential_replay_hit_rate"] == row["engine_hit_rate"]
    assert row["batched_replay_hit_rate"] is None and row["requests_differ_batched"] is None


def test_in_engine_wa_lru_equals_the_mixed_wa_lru_replay(engine_factory):
    capacity = 40
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=1,
                            eviction="wa_lru", cache_friendly=("chat",))
    stream = mixed_request_stream({
        "chat": workload_stream("chat", seed=7, conversations=6, turns=3),
        "once": workload_stream("once", seed=8, conversations=10, turns=1, system_tokens=96),
    })
    res, frame = run(engine, stream)
    trace = encode_trace(frame)
    predicted = per_request_from_mask(frame, trace, wa_lru_hit_mask(trace, ["chat"], capacity - 1, "prefix"))
    joined = engine_vs(predicted, res.requests)
    assert joined["predicted"].to_list() == joined["num_cached_tokens"].to_list()
    # `once` requests share a 96-token system prompt but never keep it: they
    # hit nothing, while chat's later turns hit.
    by = joined.group_by("workload").agg(pl.col("num_cached_tokens").sum()).sort("workload")
    assert by["num_cached_tokens"].to_list()[0] > 0 and by["num_cached_tokens"].to_list()[1] == 0
    lru = engine_vs(per_request_hits(frame, capacity - 1, "lru", "prefix"), res.requests)
    assert lru.filter(pl.col("workload") == "once")["predicted"].sum() > 0


def test_in_engine_wa_lru_lets_other_workloads_hit_admitted_blocks(engine_factory):
    """In vLLM a request of a workload that is not admitted still looks up the
    prefix cache: `peek` (not cache-friendly) repeats chat's first prompts and
    hits the blocks chat cached, as the prefix replay with BYPASS predicts. A
    replay where every access of a non-admitted workload misses (the block
    semantics' WA-LRU) would predict no such hit."""
    capacity = 40
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=1,
                            eviction="wa_lru", cache_friendly=("chat",))
    chat = workload_stream("chat", seed=7, conversations=6, turns=3)
    peek = workload_stream("peek", seed=7, conversations=2, turns=1).with_columns(
        (pl.col("arrival_s") + 0.3).alias("arrival_s"))  # the same rng: chat's system and first prompts
    res, frame = run(engine, mixed_request_stream({"chat": chat, "peek": peek}))
    trace = encode_trace(frame)
    predicted = per_request_from_mask(frame, trace, wa_lru_hit_mask(trace, ["chat"], capacity - 1, "prefix"))
    joined = engine_vs(predicted, res.requests)
    assert joined["predicted"].to_list() == joined["num_cached_tokens"].to_list()
    assert joined.filter(pl.col("workload") == "peek")["num_cached_tokens"].sum() > 0


def test_policy_registry_and_bad_names():
    assert {"lru", "fifo", "wa_lru", "sieve"} <= set(eviction_names())
    with pytest.raises(ValueError, match="engine.eviction='mru'"):
        install_eviction_policy(None, "mru")


def test_in_engine_sieve_equals_the_sieve_prefix_replay(engine_factory):
    capacity = 40
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=1,
                            eviction="sieve")
    assert engine.eviction.name == "sieve"
    res, trace = run(engine, workload_stream("chat", seed=5, conversations=8, turns=3))
    sieve = engine_vs(per_request_hits(trace, capacity - 1, "sieve", "prefix"), res.requests)
    assert sieve["predicted"].to_list() == sieve["num_cached_tokens"].to_list()
    assert sieve["num_cached_tokens"].sum() > 0
    # The policy is really in force: vLLM's LRU and the pool's FIFO would have served other hits.
    for other in ("lru", "fifo"):
        alt = engine_vs(per_request_hits(trace, capacity - 1, other, "prefix"), res.requests)
        assert alt["predicted"].to_list() != alt["num_cached_tokens"].to_list(), other


def test_config_names_a_bad_eviction_policy():
    from prefix_study.config.compose import compose_config
    from prefix_study.config.validate import ConfigError

    with pytest.raises(ConfigError, match="engine.eviction"):
        compose_config(["engine.eviction=mru"])
    with pytest.raises(ConfigError, match="mix.cache_friendly"):
        compose_config(["engine.eviction=wa_lru"])
    assert compose_config(["engine.eviction=wa_lru", "mix.cache_friendly=[qa]"]).engine.eviction == "wa_lru"
