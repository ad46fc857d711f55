"""Batched engine runs at a binding capacity: preemption, retried lookups, and
the consistency check that replays exactly what vLLM did.

The case of issue 11 (qa at b32, 73 blocks, max_num_seqs=16): request
qa-000004-00 was admitted with 512 cached tokens, preempted by recompute,
looked up again (576, 576, 544 cached) while its allocation failed twice and
then succeeded. vLLM reports the first admission's 512 (prefill stats are
set only before a request's first preemption); the old check compared it
with the latest lookup's 544. The stream below reproduces that pattern on a
small scale: a shared context, many concurrent requests, a capacity that
binds.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from prefix_study.engine import check_request_stream, drive
from prefix_study.traces.derive import check_engine_consistency, derive_block_trace

pytestmark = pytest.mark.engine

BLOCK = 32
CAPACITY = 40
MAX_LEN = 640


def shared_context_stream(seed: int = 0, requests: int = 24) -> pl.DataFrame:
    """qa-like: a 6-block shared context, short questions, replies long
    enough that concurrent decodes run the pool dry."""
    rng = random.Random(seed)
    context = [rng.randrange(50000) for _ in range(6 * BLOCK)]
    rows = []
    for i in range(requests):
        question = [rng.randrange(50000) for _ in range(rng.randrange(10, 60))]
        rows.append({
            "request_id": f"qa-{i:06d}-00", "workload": "qa", "conversation_id": f"qa-{i:06d}",
            "turn_index": 0, "arrival_s": i * 0.01, "think_time_s": 0.0,
            "prompt_token_ids": context + question,
            "scripted_output_token_ids": [rng.randrange(50000) for _ in range(rng.randrange(40, 120))],
        })
    return pl.DataFrame(rows, schema_overrides={"turn_index": pl.Int32,
                                                "prompt_token_ids": pl.List(pl.Int32),
                                                "scripted_output_token_ids": pl.List(pl.Int32)})


@pytest.fixture(scope="module")
def batched_run(engine_factory):
    engine = engine_factory(BLOCK, capacity_blocks=CAPACITY, max_model_len=MAX_LEN, max_num_seqs=16)
    stream = check_request_stream(shared_context_stream(), MAX_LEN, "script").frame
    res = drive(engine, stream, progress=False)
    trace = derive_block_trace(res.requests, BLOCK, engine.none_hash_seed(), engine_block_size=BLOCK)
    return res, trace


def test_binding_capacity_with_batching_preempts_and_retries(batched_run):
    res, _ = batched_run
    r = res.requests
    assert res.kv_events.filter(pl.col("event") == "removed").height > 0, "capacity did not bind"
    assert r["num_preemptions"].sum() > 0, "no request was preempted"
    assert res.stats["preempted_requests"] == (r["num_preemptions"] > 0).sum()
    assert res.stats["unschedulable"] == []
    # Every request was admitted exactly once before any preemption, and once
    # after each preemption; every other lookup's allocation failed.
    for lookups, preempted in r.select("lookups", "num_preemptions").rows():
        admitted = [lk["preemptions"] for lk in lookups if lk["admitted"]]
        assert admitted == list(range(preempted + 1))


def test_check_is_exact_for_preempted_and_retried_requests(batched_run):
    res, trace = batched_run
    report = check_engine_consistency(res.requests, res.kv_events, trace, BLOCK)
    assert report["requests_preempted"] > 0
    assert report["lookups_checked"] > res.requests.height
    assert report["derived_equals_engine"], report
    assert report["num_lookup_mismatches"] == 0, report["lookup_mismatches"]
    assert report["num_consistency_mismatches"] == 0, report["consistency_mismatches"]
    assert report["ok"]


def test_latest_lookup_is_not_what_vllm_reports(batched_run):
    """The issue's failure: a preempted request re-looked up finds more
    cached than the first admission vLLM reports."""
    res, _ = batched_run
    differ = [
        rid for rid, cached, lookups in res.requests.select(
            "request_id", "num_cached_tokens", "lookups").rows()
        if lookups[-1]["cached_tokens"] != cached
    ]
    assert differ, "no request whose latest lookup differs from num_cached_tokens"


def test_a_genuine_mismatch_still_fails(batched_run):
    res, trace = batched_run
    victim = res.requests.filter(pl.col("num_cached_tokens") > 0)["request_id"][0]
    wrong = res.requests.with_columns(
        pl.when(pl.col("request_id") == victim).then(pl.col("num_cached_tokens") - BLOCK)
        .otherwise(pl.col("num_cached_tokens")).alias("num_cached_tokens"))
    report = check_engine_consistency(wrong, res.kv_events, trace, BLOCK)
    assert not report["ok"]
    assert [m["request_id"] for m in report["consistency_mismatches"]] == [victim]
    # An eviction the events do not show: a lookup no longer matches them.
    removed = res.kv_events.filter(pl.col("event") == "removed")["seq"][0]
    report = check_engine_consistency(res.requests, res.kv_events.filter(pl.col("seq") != removed),
                                      trace, BLOCK)
    assert not report["ok"] and report["num_lookup_mismatches"] > 0


_FRESH_ENGINES = []  # never garbage-collected mid-session (see conftest)


def test_a_reused_engine_writes_what_a_fresh_one_writes(engine_factory, model_dir, tmp_path):
    """One engine per job serves every workload: after another workload and a
    reset, a workload's Parquet outputs equal those of a fresh engine, byte for byte."""
    from omegaconf import OmegaConf

    from prefix_study.config.schema import EngineConfig
    from prefix_study.engine import EngineSpec, build_engine
    from prefix_study.engine.stage import run_workloads

    cfg = OmegaConf.structured(EngineConfig(block_sizes=[BLOCK], capacity_blocks=CAPACITY,
                                            max_model_len=MAX_LEN, max_num_batched_tokens=MAX_LEN))
    first = shared_context_stream(seed=1, requests=10)
    second = shared_context_stream(seed=2, requests=10)
    reused = engine_factory(BLOCK, capacity_blocks=CAPACITY, max_model_len=MAX_LEN, max_num_seqs=16)
    run_workloads(reused, cfg, {"first": first, "second": second},
                  {n: tmp_path / "reused" / n / f"b{BLOCK}" for n in ("first", "second")}, progress=False)
    fresh = build_engine(EngineSpec.from_config(cfg, model_dir, BLOCK))
    _FRESH_ENGINES.append(fresh)
    run_workloads(fresh, cfg, {"second": second}, {"second": tmp_path / "fresh" / "second" / f"b{BLOCK}"},
                  progress=False)
    for name in ("requests.parquet", "kv_events.parquet", "schedule.parquet"):
        a = (tmp_path / "reused" / "second" / f"b{BLOCK}" / name).read_bytes()
        b = (tmp_path / "fresh" / "second" / f"b{BLOCK}" / name).read_bytes()
        assert a == b, name
    # The engine sweep table's row of a run: vLLM's rate beside the batched and
    # sequential replays', from the trace the traces stage derives and checks.
    from prefix_study.replay.engine_sweep import EngineRunFiles, compare_engine_run
    from prefix_study.traces.stage import run as derive_trace

    run_dir = tmp_path / "fresh" / "second" / f"b{BLOCK}"
    report = derive_trace("second", None, BLOCK, run_dir, tmp_path / "t.parquet", tmp_path / "t.check.json")
    assert report["ok"]
    requests = pl.read_parquet(run_dir / "requests.parquet")
    (row,) = compare_engine_run(EngineRunFiles("second", BLOCK, CAPACITY, run_dir, tmp_path / "t.parquet")).to_dicts()
    assert row["capacity_blocks"] == CAPACITY and row["requests"] == 10 and row["run"] == "second"
    assert row["engine_hit_rate"] == requests["num_cached_tokens"].sum() / requests["num_prompt_tokens"].sum()
    assert row["requests_differ_batched"] == 0 and row["batched_replay_hit_rate"] == row["engine_hit_rate"]
    assert 0 < row["sequential_replay_hit_rate"] <= 1 and 0 <= row["requests_differ_sequential"] <= 10
    assert row["preempted_requests"] == (requests["num_preemptions"] > 0).sum()
    with pytest.raises(ValueError, match="not b32 with 41"):
        compare_engine_run(EngineRunFiles("second", BLOCK, CAPACITY + 1, run_dir, tmp_path / "t.parquet"))
