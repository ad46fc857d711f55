"""Batched vLLM at a binding capacity: the replay driven by the engine's
recorded schedule (replay/batched.py) reproduces num_cached_tokens."""

from __future__ import annotations

import polars as pl
import pytest

from prefix_study.engine import check_request_stream, drive
from prefix_study.replay.batched import batched_replay, request_hashes
from prefix_study.replay.per_request import per_request_hits
from prefix_study.traces.derive import derive_block_trace
from test_engine_eviction import workload_stream

pytestmark = pytest.mark.engine

MAX_LEN = 640


def test_batched_replay_equals_the_engine_at_a_binding_capacity(engine_factory):
    capacity = 40  # 1,248 usable tokens: two long requests fill it
    engine = engine_factory(32, capacity_blocks=capacity, max_model_len=MAX_LEN, max_num_seqs=16)
    stream = pl.concat([workload_stream("chat", 5, 12, 3),
                        workload_stream("qa", 6, 16, 1, system_tokens=200)])
    stream = stream.with_columns(pl.col("arrival_s") * 0.2)  # arrivals close together: batches
    res = drive(engine, check_request_stream(stream, MAX_LEN, "script").frame, progress=False)
    schedule = res.schedule
    assert set(schedule["op"]) == {"lookup", "allocate", "free"}
    # Capacity binds: admissions fail and running requests are preempted.
    assert res.stats["failed_allocations"] > 0 and res.stats["freed_by_preemption"] > 0
    assert schedule.filter(pl.col("op") == "free").height == res.requests.height + res.stats["freed_by_preemption"]
    trace = derive_block_trace(res.requests, 32, engine.none_hash_seed(), engine_block_size=32)
    batched = batched_replay(schedule, request_hashes(trace), capacity, 32)
    joined = res.requests.select("request_id", "num_cached_tokens").join(batched, on="request_id")
    assert joined.height == res.requests.height
    assert joined["hit_tokens"].to_list() == joined["num_cached_tokens"].to_list()
    assert joined["num_cached_tokens"].sum() > 0
    assert joined["preemptions"].sum() == res.stats["freed_by_preemption"]
    # The sequential replay is not enough here (it was at max_num_seqs=1).
    sequential = per_request_hits(trace, capacity - 1, "lru", "prefix")
    seq = joined.join(sequential, on="request_id")
    assert (seq["hit_blocks"] * 32 != seq["num_cached_tokens"]).any()
