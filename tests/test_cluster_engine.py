"""The cluster simulation's per-request cached tokens equal the real vLLM
engine's: fix the routing of a small N=2 run, send each replica's sub-stream
through vLLM (one request at a time, same capacity, the replicas' policy as
the engine's eviction policy), compare."""

from __future__ import annotations

import polars as pl
import pytest

from prefix_study.cluster.costs import EngineClockCost
from prefix_study.cluster.requests import requests_from_trace
from prefix_study.cluster.simulate import simulate
from prefix_study.engine import check_request_stream, drive
from prefix_study.traces.derive import derive_block_trace
from test_engine_traces import synthetic_stream

pytestmark = pytest.mark.engine

CAPACITY = 30  # blocks per replica (binding: the stream holds ~90 distinct blocks)
MAX_LEN = 640


@pytest.fixture(scope="module")
def base_run(engine_factory) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(stream, requests, block trace) of one engine run with a capacity that does
    not bind: the token ids and hash seed of the trace. Once per module (every
    parameter routes the same stream)."""
    stream = check_request_stream(synthetic_stream(seed=11, conversations=8, turns=3), MAX_LEN, "script").frame
    engine = engine_factory(32, capacity_blocks=2048, max_model_len=MAX_LEN, max_num_seqs=1)
    base = drive(engine, stream, progress=False).requests
    return stream, base, derive_block_trace(base, 32, engine.none_hash_seed(), engine_block_size=32)


@pytest.mark.parametrize("policy", ["lru", "fifo"])  # the cluster policies vLLM's pool runs (engine.eviction)
@pytest.mark.parametrize(("router", "variant"), [("dynamo_kv", "precise")])
def test_two_replicas_cached_tokens_equal_the_engine(engine_factory, base_run, router, variant, policy):
    from prefix_study.config.compose import compose_config
    from omegaconf import OmegaConf

    stream, base, trace = base_run
    lengths = base.select("request_id", pl.col("num_prompt_tokens").alias("prompt_tokens"),
                          pl.col("output_token_ids").list.len().alias("output_tokens"),
                          pl.col("conversation_id").alias("session_id"))
    reqs = requests_from_trace(trace, 32, lengths)
    params = OmegaConf.to_container(compose_config([]).cluster.router, resolve=True)
    run = simulate(reqs, 2, router, variant, params.get(router, {}), policy, CAPACITY,
                   EngineClockCost(0.004, 0.0002), max_batch=4)
    assert set(run.replica.tolist()) == {0, 1}
    simulated = dict(zip(reqs.request_id, (run.hit_blocks * 32).tolist()))
    evicting = 0
    for replica in (0, 1):
        order = [rid for rid, r in zip(reqs.request_id, run.replica.tolist()) if r == replica]
        # Each request on its own, in routing order, on a fresh engine of the same capacity
        # (+1: vLLM keeps a null block out of its pool).
        sub = (stream.filter(pl.col("request_id").is_in(order))
               .with_columns(pl.col("request_id").alias("conversation_id"), pl.lit(0, pl.Int32).alias("turn_index"),
                             pl.col("request_id").replace_strict(order, [10.0 * k for k in range(len(order))],
                                                                 return_dtype=pl.Float64).alias("arrival_s"),
                             pl.lit(0.0).alias("think_time_s")))
        engine = engine_factory(32, capacity_blocks=CAPACITY + 1, max_model_len=MAX_LEN, max_num_seqs=1,
                                eviction=policy)
        assert engine.eviction.name == policy
        res = drive(engine, check_request_stream(sub, MAX_LEN, "script").frame, progress=False)
        evicting += res.kv_events.filter(pl.col("event") == "removed").height
        got = res.requests.sort("scheduled_s")
        assert got["request_id"].to_list() == order
        assert got["num_cached_tokens"].to_list() == [simulated[r] for r in order], replica
    assert evicting > 0, "capacity did not bind"
    assert sum(simulated.values()) > 0
