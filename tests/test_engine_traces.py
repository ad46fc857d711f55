"""Engine runs: per-request reuse, KV events, derived traces and their proofs."""

from __future__ import annotations

import random

import polars as pl
import pytest

from prefix_study.engine import ClockModel, RequestStreamError, check_request_stream, drive
from prefix_study.traces.block_hash import chained_block_hashes
from prefix_study.traces.derive import block_usage, check_engine_consistency, derive_block_trace

pytestmark = pytest.mark.engine


def synthetic_stream(seed: int = 0, conversations: int = 6, turns: int = 3) -> pl.DataFrame:
    """Multi-turn conversations plus single requests sharing a system prompt."""
    rng = random.Random(seed)
    system = [rng.randrange(50000) for _ in range(70)]
    rows = []
    for c in range(conversations):
        prompt = system + [rng.randrange(50000) for _ in range(rng.randrange(20, 90))]
        for t in range(turns):
            reply = [rng.randrange(50000) for _ in range(rng.randrange(5, 40))]
            rows.append({
                "request_id": f"conv{c}-t{t}", "workload": "synthetic",
                "conversation_id": f"conv{c}", "turn_index": t,
                "arrival_s": c * 0.05 if t == 0 else 0.0,
                "think_time_s": 0.0 if t == 0 else rng.random() * 0.2,
                "prompt_token_ids": list(prompt), "scripted_output_token_ids": reply,
            })
            prompt = prompt + reply + [rng.randrange(50000) for _ in range(rng.randrange(10, 60))]
    return pl.DataFrame(rows, schema_overrides={"turn_index": pl.Int32,
                                                "prompt_token_ids": pl.List(pl.Int32),
                                                "scripted_output_token_ids": pl.List(pl.Int32)})


@pytest.fixture(scope="module")
def runs(engine_factory):
    out = {}
    stream = synthetic_stream()
    for bs in (32, 64):
        engine = engine_factory(bs, capacity_blocks=2048)
        res = drive(engine, check_request_stream(stream, 2048, "script").frame, mode="script",
                    clock=ClockModel("simulated"), progress=False)
        out[bs] = (engine, res)
    return out


@pytest.mark.parametrize("bs", [32, 64])
def test_derived_hashes_equal_engine_events_and_hits_are_consistent(runs, bs):
    engine, res = runs[bs]
    seed = engine.none_hash_seed()
    trace = derive_block_trace(res.requests, bs, seed, engine_block_size=bs)
    report = check_engine_consistency(res.requests, res.kv_events, trace, bs)
    assert report["engine_stored_hashes"] > 10
    assert report["derived_equals_engine"], report
    assert report["num_consistency_mismatches"] == 0, report["consistency_mismatches"]
    assert report["requests_checked"] == res.requests.height == 18


@pytest.mark.parametrize("bs", [32, 64])
def test_per_request_records(runs, bs):
    _, res = runs[bs]
    r = res.requests
    assert r["reuse_fraction"].to_list() == pytest.approx(
        (r["num_cached_tokens"] / r["num_prompt_tokens"]).to_list())
    assert (r["scheduled_s"] >= r["arrival_s"]).all()
    assert (r["first_token_s"] >= r["scheduled_s"]).all()
    assert (r["finished_s"] >= r["first_token_s"]).all()
    # Closed loop: a turn arrives only after its previous turn finished.
    by = {(row["conversation_id"], row["turn_index"]): row for row in r.iter_rows(named=True)}
    for (conv, t), row in by.items():
        if t > 0:
            assert row["arrival_s"] >= by[(conv, t - 1)]["finished_s"]
    # Later turns reuse the previous turn's prompt and reply.
    later = r.filter(pl.col("turn_index") > 0)
    assert later["reuse_fraction"].min() > 0.3
    assert later["reuse_fraction"].mean() > r.filter(pl.col("turn_index") == 0)["reuse_fraction"].mean()
    # Outputs are exactly the scripted replies.
    stream = synthetic_stream().select("request_id", "scripted_output_token_ids")
    joined = r.join(stream, on="request_id")
    assert all(a == b for a, b in zip(joined["output_token_ids"].to_list(),
                                      joined["scripted_output_token_ids"].to_list()))


def test_16_token_trace_is_a_refinement_of_32(runs):
    engine, res = runs[32]
    seed = engine.none_hash_seed()
    t16 = derive_block_trace(res.requests, 16, seed, engine_block_size=32)
    t32 = derive_block_trace(res.requests, 32, seed, engine_block_size=32)
    assert t16["engine_hit"].is_null().all()
    assert t32["engine_hit"].is_not_null().all()
    n16 = t16.group_by("request_id").len().sort("request_id")
    n32 = t32.group_by("request_id").len().sort("request_id")
    assert all(a in (2 * b, 2 * b + 1) for a, b in zip(n16["len"], n32["len"]))


def test_simulated_clock_runs_are_deterministic(engine_factory):
    stream = check_request_stream(synthetic_stream(seed=3, conversations=3), 2048, "script").frame
    results = []
    for _ in range(2):
        engine = engine_factory(32, capacity_blocks=2048)
        results.append(drive(engine, stream, progress=False))
    assert results[0].requests.equals(results[1].requests)
    assert results[0].kv_events.equals(results[1].kv_events)


def test_block_usage_counts_engine_hits(runs):
    engine, res = runs[32]
    trace = derive_block_trace(res.requests, 32, engine.none_hash_seed(), engine_block_size=32)
    usage = block_usage(trace, res.kv_events)
    assert usage["hits"].sum() == res.requests["num_cached_tokens"].sum() // 32
    assert (usage["uses"] == usage["use_times"].list.len()).all()
    assert (usage["times_stored"] >= 1).all()


def test_hash_chain_depends_on_the_whole_prefix():
    a = chained_block_hashes(list(range(64)), 32, "seed")
    b = chained_block_hashes([999] + list(range(1, 64)), 32, "seed")
    assert a[0] != b[0] and a[1] != b[1]
    assert chained_block_hashes(list(range(64)), 32, "other")[0] != a[0]


def test_bad_request_streams_are_rejected_before_the_engine():
    good = synthetic_stream(conversations=2)
    with pytest.raises(RequestStreamError, match="prompt_token_ids"):
        check_request_stream(good.drop("prompt_token_ids"), 2048, "script")
    empty = good.with_columns(pl.when(pl.col("request_id") == "conv1-t0")
                              .then(pl.lit([], dtype=pl.List(pl.Int32)))
                              .otherwise(pl.col("prompt_token_ids")).alias("prompt_token_ids"))
    with pytest.raises(RequestStreamError, match="conv1-t0"):
        check_request_stream(empty, 2048, "script")
    with pytest.raises(RequestStreamError, match=r"request conv\d-t\d needs \d+ tokens .*max_model_len=120"):
        check_request_stream(good, 120, "script")


def test_over_long_requests_can_be_skipped_with_their_later_turns():
    stream = synthetic_stream(conversations=3)
    longest = stream.with_columns(pl.col("prompt_token_ids").list.len().alias("n")).sort("n")[-1]
    limit = int(longest["n"][0])  # the longest prompt plus its reply no longer fits
    checked = check_request_stream(stream, limit, "script", skip_too_long=True)
    skipped = {s["request_id"] for s in checked.skipped}
    assert longest["request_id"][0] in skipped
    assert checked.frame.height + len(skipped) == stream.height
    assert not set(checked.frame["request_id"]) & skipped


@pytest.mark.parametrize("capacity", [24, 40])
def test_prefix_replay_reproduces_the_engine_when_capacity_binds(engine_factory, capacity):
    """One request at a time, same capacity: the `prefix` LRU replay of the
    derived trace predicts vLLM's num_cached_tokens for every request."""
    from prefix_study.replay.per_request import per_request_hits

    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=640, max_num_seqs=1)
    stream = check_request_stream(synthetic_stream(seed=5, conversations=8, turns=3), 640, "script").frame
    res = drive(engine, stream, progress=False)
    assert res.kv_events.filter(pl.col("event") == "removed").height > 0, "capacity did not bind"
    trace = derive_block_trace(res.requests, 32, engine.none_hash_seed(), engine_block_size=32)
    predicted = per_request_hits(trace, capacity - 1, "lru", "prefix")  # vLLM keeps a null block
    joined = predicted.join(res.requests.select("request_id", "num_cached_tokens"), on="request_id")
    assert joined.height == res.requests.height
    assert (joined["hit_blocks"] * 32).to_list() == joined["num_cached_tokens"].to_list()
    assert joined["num_cached_tokens"].sum() > 0


def test_kv_events_spilled_as_they_happen_equal_in_memory(engine_factory, tmp_path):
    stream = check_request_stream(synthetic_stream(seed=4, conversations=3), 2048, "script").frame
    engine = engine_factory(32, capacity_blocks=2048)
    in_memory = drive(engine, stream, progress=False).kv_events
    engine = engine_factory(32, capacity_blocks=2048)
    engine.events.spill_rows = 5
    engine.events.spill_to(tmp_path / "events.parquet")
    spilled = drive(engine, stream, progress=False).kv_events
    engine.events.spill_rows = 8192
    assert in_memory.height > 15  # several spills of 5 rows
    assert spilled.equals(in_memory)
    assert pl.read_parquet(tmp_path / "events.parquet").equals(in_memory)
