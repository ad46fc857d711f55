"""Cluster stage: replica caches equal the replay, the queue model,
routers, validation and byte-identical tables."""

from __future__ import annotations

import functools
import json

import numpy as np
import polars as pl
import pytest

from prefix_study.cluster.costs import EngineClockCost, cost_model
from prefix_study.cluster.queue import ReplicaQueues
from prefix_study.cluster.replicas import ReplicaCaches, replica_policy_names
from prefix_study.cluster.requests import requests_from_trace
from prefix_study.cluster.routers import router_labels, router_names
from prefix_study.cluster.simulate import run_metrics, simulate
from prefix_study.config.compose import compose_config
from prefix_study.config.validate import ConfigError
from prefix_study.replay import encode_trace, infinite_cache_hits, replay_hit_mask
from prefix_study.replay.per_request import per_request_from_mask, per_request_hits
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests
from test_cluster_caches import default_config, with_request_columns

COST = EngineClockCost(step_overhead_s=0.004, token_time_s=0.0002)  # the engine's default clock


@pytest.fixture(scope="module")
def cfg():
    return default_config()


@pytest.fixture(scope="module")
def params(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg.cluster.router, resolve=True)


def partial_tail_trace(seed: int, n: int = 300):
    """Prefix-sharing conversations of two workloads (turn numbers in the
    request ids: several categories) with output (not looked-up) blocks and
    partial tails."""
    rng = np.random.default_rng(seed)
    reqs, lookup, partial, rids, workloads = [], [], [], [], []
    convs: list[list[int]] = []
    turns: list[int] = []
    nxt = 10_000
    for _ in range(n):
        if convs and rng.random() < 0.5:
            k = int(rng.integers(len(convs)))
            base = convs[k]
            turns[k] += 1
        else:
            base = [int(rng.integers(4))]  # one of 4 shared system blocks
            convs.append(base)
            turns.append(0)
            k = len(convs) - 1
        new = list(range(nxt, nxt + int(rng.integers(1, 6))))
        nxt += len(new)
        out = list(range(nxt, nxt + int(rng.integers(0, 3))))
        nxt += len(out)
        blocks = base + new + out
        convs[k] = blocks
        reqs.append(blocks)
        lookup.append([i < len(base) + len(new) - int(rng.integers(0, 2)) for i in range(len(blocks))])
        partial.append(bool(rng.random() < 0.6))
        workloads.append(("chat", "qa")[k % 2])
        rids.append(f"{workloads[-1]}-{k}-{turns[k]}")
    return with_request_columns(trace_from_requests(reqs, lookup=lookup), reqs, rids, workloads, partial)


@functools.cache
def partial_tail_requests(seed: int, n: int = 300):
    """partial_tail_trace(seed, n): (frame, its encoded trace, its cluster requests)."""
    frame = partial_tail_trace(seed, n)
    return frame, encode_trace(frame), requests_from_trace(frame, 32)


@pytest.mark.parametrize("policy", replica_policy_names())
def test_replica_cache_equals_the_replay(policy):
    """A replica cache fed one request at a time (ReplicaCaches.serve) equals
    the policy's whole-trace prefix replay, per request, on three traces at
    four capacities each."""
    for seed in (0, 1, 2):
        frame, trace, reqs = partial_tail_requests(seed)
        assert reqs.num_categories == 16 and len(set(reqs.category)) > 4
        for capacity in (3, 8, 20, 60):
            mask = replay_hit_mask(trace, policy, capacity, "prefix")
            expected = per_request_from_mask(frame, trace, mask)["hit_blocks"].to_list()
            caches = ReplicaCaches(reqs.trace, policy, 1, capacity, reqs.max_request_blocks())
            got = [caches.serve(0, s, e)[0] for s, e in zip(reqs.start, reqs.end)]
            assert got == expected, (policy, seed, capacity)
            assert sum(got) > 0


@pytest.mark.parametrize("policy", replica_policy_names())
def test_one_replica_equals_the_single_instance_prefix_replay(policy, params, cfg):
    """Every router, every policy: one replica sees the whole trace in order.
    The stage's cost model (config's model and hardware) times the queues and
    prices cost_lru's recomputes, as the replay stage's does."""
    frame = partial_tail_trace(4, n=400)
    reqs = requests_from_trace(frame, 32)
    trace = encode_trace(frame)
    cost = cost_model(cfg)
    for capacity in (24, 150):
        mask = replay_hit_mask(trace, policy, capacity, "prefix", cost, 32)
        expected = per_request_from_mask(frame, trace, mask)["hit_blocks"].to_numpy()
        total = int((mask & trace.looked_up).sum())
        assert 0 < total < infinite_cache_hits(trace)  # the capacity binds
        for router, variant in router_labels(router_names(), ["precise", "approximate"]):
            run = simulate(reqs, 1, router, variant, params.get(router, {}), policy, capacity, cost, 8)
            assert (run.replica == 0).all()
            assert np.array_equal(run.hit_blocks, expected), (router, variant, capacity)
            assert int(run.hit_blocks.sum()) == total


def test_a_replica_policy_changes_the_cluster_hit_rate(params):
    """The policy reaches the replicas: 4 replicas behind a precise router,
    different policies, different hits (and each replica's own sub-stream
    equals its policy's prefix replay, checked through per-replica frames)."""
    frame = partial_tail_trace(5, n=400)
    reqs = requests_from_trace(frame, 32)
    rates = {}
    for policy in ("lru", "arc", "wa_prob"):
        run = simulate(reqs, 4, "dynamo_kv", "precise", params["dynamo_kv"], policy, 40, COST, 8)
        rates[policy] = run_metrics(run)["hit_rate"]
        rid = frame["request_id"].unique(maintain_order=True).to_list()
        replica_of = dict(zip(rid, run.replica.tolist()))
        for r in range(4):
            sub = frame.filter(pl.col("request_id").replace_strict(replica_of) == r)
            mine = run.hit_blocks[run.replica == r].tolist()
            # Categories are numbered over the whole trace; the sub-trace renumbers
            # them, which only wa_prob's tie-breaking could notice.
            assert mine == per_request_hits(sub, 40, policy, "prefix")["hit_blocks"].to_list(), (policy, r)
    assert len(set(rates.values())) == 3, rates


def reference_queue(cost, max_batch, requests):
    """One replica, one step at a time (no bulk decode): (first token, finish) per request.
    requests: (arrival, prompt, cached, output) in arrival order."""
    now, waiting, running, out = 0.0, [], [], {}
    i = 0
    n = len(requests)
    while i < n or waiting or running:
        while i < n and requests[i][0] <= now:
            waiting.append(i)
            i += 1
        if not waiting and not running:
            now = requests[i][0]
            continue
        admitted = []
        while waiting and len(running) + len(admitted) < max_batch:
            admitted.append(waiting.pop(0))
        decode = [requests[r][1] + done for r, done in running]
        dt = cost.step_time_s([(requests[r][1] - requests[r][2], requests[r][2]) for r in admitted], decode)
        now += dt
        nxt = []
        for r, done in running:
            if done + 1 >= requests[r][3]:
                out[r] = (out[r][0], now)
            else:
                nxt.append((r, done + 1))
        for r in admitted:
            out[r] = (now, now)
            if requests[r][3] > 1:
                nxt.append((r, 1))
        running = nxt
    return [out[r] for r in range(n)]


#: A decode step that also grows with the context (to test the bulk advance).
AFFINE_CONTEXT_COST = EngineClockCost(0.004, 0.0002, context_token_time_s=1e-6)


@pytest.mark.parametrize("cost", [COST, AFFINE_CONTEXT_COST])
@pytest.mark.parametrize("max_batch", [1, 3, 16])
def test_bulk_decode_queue_equals_step_by_step(cost, max_batch):
    rng = np.random.default_rng(max_batch)
    n = 60
    arrivals = np.cumsum(rng.exponential(0.05, n)).tolist()
    reqs = [(a, int(rng.integers(40, 400)), 0, int(rng.integers(1, 40))) for a in arrivals]
    reqs = [(a, p, int(rng.integers(0, p)), o) for a, p, _, o in reqs]
    q = ReplicaQueues(cost, max_batch, 1, [p for _, p, _, _ in reqs], [o for _, _, _, o in reqs])
    for i, (a, p, c, o) in enumerate(reqs):
        q.advance_to(a)
        q.enqueue(0, i, a, c)
    q.drain()
    first, finish = q.first_token_s.tolist(), q.finish_s.tolist()
    expected = reference_queue(cost, max_batch, reqs)
    assert first == pytest.approx([e[0] for e in expected], rel=1e-9, abs=1e-9)
    assert finish == pytest.approx([e[1] for e in expected], rel=1e-9, abs=1e-9)
    ttft = np.array(first) - np.array(arrivals)
    assert (ttft > 0).all()


def test_hand_computed_ttft():
    """Two 100-token prompts at t=0 on one replica, batch 1: the second waits
    for the first's prefill and its 2 decode steps."""
    q = ReplicaQueues(COST, 1, 1, [100, 100], [3, 1])
    q.enqueue(0, 0, 0.0, 0)
    q.enqueue(0, 1, 0.0, 36)
    q.drain()
    first, finish = q.first_token_s, q.finish_s
    prefill0 = 0.004 + 100 * 0.0002
    decode = 0.004 + 0.0002
    assert first[0] == pytest.approx(prefill0)
    assert finish[0] == pytest.approx(prefill0 + 2 * decode)
    assert first[1] == pytest.approx(prefill0 + 2 * decode + 0.004 + 64 * 0.0002)
    assert finish[1] == first[1]


def test_prefix_aware_routers_beat_round_robin_on_a_prefix_sharing_trace(params):
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=1500, seed=9, arrival_rate=10.0))
    reqs = requests_from_trace(frame, 32)
    rates = {}
    for router, variant in router_labels(router_names(), ["precise"]):
        run = simulate(reqs, 4, router, variant, params.get(router, {}), "lru", 300, COST, 16)
        rates[router] = run_metrics(run)["hit_rate"]
    for router in ("dynamo_kv", "sglang_cache_aware", "llmd"):
        assert rates[router] > rates["round_robin"] + 0.05, rates


def test_session_affinity_keeps_a_conversation_on_one_replica(params):
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=400, seed=2))
    lengths = frame.group_by("request_id", maintain_order=True).agg(
        (pl.len() * 32).alias("prompt_tokens"), pl.lit(8).alias("output_tokens"),
        pl.col("block_hash").first().cast(pl.String).alias("session_id"))
    reqs = requests_from_trace(frame, 32, lengths)
    run = simulate(reqs, 8, "session_affinity", None, params["session_affinity"], "lru", 200, COST, 4)
    by_session: dict[int, set[int]] = {}
    for key, r in zip(reqs.session_key, run.replica.tolist()):
        by_session.setdefault(key, set()).add(r)
    assert all(len(v) == 1 for v in by_session.values())
    assert len(set(run.replica.tolist())) > 4
    run = simulate(reqs, 8, "session_affinity", None, {**params["session_affinity"], "key": "first_block"},
                   "lru", 200, COST, 4)
    by_first: dict[int, set[int]] = {}
    for blocks, r in zip(reqs.blocks, run.replica.tolist()):
        by_first.setdefault(blocks[0], set()).add(r)
    assert all(len(v) == 1 for v in by_first.values()) and len(by_first) > 1


@pytest.mark.parametrize(("override", "key"), [
    ("cluster.replicas=[0,2]", "cluster.replicas"),
    ("cluster.routers=[round_robin,nope]", "cluster.routers"),
    ("cluster.capacity=100", "cluster.capacity"),
    ("cluster.capacity=3000", "cluster.capacity"),
    ("cluster.variants=[exact]", "cluster.variants"),
    ("cluster.policy=belady", "cluster.policy"),
    ("cluster.workloads=[nope]", "cluster.workloads"),
    ("cluster.router.sglang_cache_aware.cache_threshold=2", "cluster.router.sglang_cache_aware.cache_threshold"),
])
def test_bad_cluster_config_fails_naming_the_key(override, key, cfg):
    """What compose_config validates after applying `override` (one compose per module)."""
    from omegaconf import OmegaConf

    from prefix_study.config.validate import validate

    overrides = override.split()
    if override == "cluster.capacity=3000":
        overrides.append("cluster.capacity_unit=tokens")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides)))


def mooncake_file(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    convs, nxt, lines = [], 0, []
    for i in range(n):
        if convs and rng.random() < 0.6:
            ids = convs[int(rng.integers(len(convs)))]
        else:
            ids = [0]
            convs.append(ids)
        new = list(range(nxt + 1, nxt + 1 + int(rng.integers(1, 4))))
        nxt += len(new)
        ids[:] = ids + new
        lines.append(json.dumps({"timestamp": i * 300, "input_length": len(ids) * 512 - 100,
                                 "output_length": int(rng.integers(1, 50)), "hash_ids": list(ids)}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cluster_stage_tables_are_byte_identical_and_capacity_is_checked(tmp_path):
    from prefix_study.cluster.stage import run
    from prefix_study.io import write_parquet
    from prefix_study.traces.importers import import_trace

    src = mooncake_file(tmp_path / "mooncake.jsonl")
    frame, _ = import_trace("mooncake", src, "mooncake")
    trace = write_parquet(frame, tmp_path / "b512.parquet")
    overrides = ["+workload@workloads.mooncake=mooncake", f"workloads.mooncake.trace_path={src}",
                 "cluster.workloads=[mooncake]", "cluster.replicas=[1,3]", "cluster.variants=[precise,approximate]"]
    cfg = compose_config(overrides)
    out = lambda d: (tmp_path / d / "cluster.parquet", tmp_path / d / "cluster.md")  # noqa: E731
    a = run(cfg, {"mooncake": trace}, {}, *out("a"), progress=False)
    run(cfg, {"mooncake": trace}, {}, *out("b"), progress=False)
    assert (tmp_path / "a/cluster.parquet").read_bytes() == (tmp_path / "b/cluster.parquet").read_bytes()
    assert (tmp_path / "a/cluster.md").read_text() == (tmp_path / "b/cluster.md").read_text()
    assert a.height == 2 * (4 + 3 * 2)
    one = a.filter(pl.col("replicas") == 1)
    assert one["hit_rate"].n_unique() == 1  # every router, one replica: the same cache
    longest = max(len(json.loads(line)["hash_ids"]) for line in src.read_text().splitlines())
    small = compose_config(overrides + [f"cluster.capacity={longest - 1}"])
    with pytest.raises(ValueError, match=r"cluster\.capacity=.*too small for one request"):
        run(small, {"mooncake": trace}, {}, *out("c"), progress=False)


def test_approximate_index_forgets_like_its_sources():
    from prefix_study.cluster.approx_index import any_replica_run, approx_index, insert, overlaps, refresh, sizes

    def believed(ix, blocks, run=overlaps):
        ids = np.array(blocks, dtype=np.int32)
        return run(ix, ids, 0, len(blocks), np.zeros(ix[1].shape[0] - 1, dtype=np.int64)).tolist()

    def send(ix, r, blocks, now):
        insert(ix, r, np.array(blocks, dtype=np.int32), 0, len(blocks), now, False)

    ttl = approx_index(3, 10, ttl_s=10.0)  # Dynamo: expiry after the last routing
    send(ttl, 0, [1, 2, 3], 0.0)
    send(ttl, 1, [1, 2], 5.0)
    assert believed(ttl, [1, 2, 3, 4]) == [3, 2, 0]
    refresh(ttl, 9.0)
    send(ttl, 0, [1], 9.0)  # refreshes block 1 only
    refresh(ttl, 12.0)
    assert believed(ttl, [1, 2, 3]) == [1, 2, 0]
    refresh(ttl, 15.0)
    assert believed(ttl, [1, 2, 3]) == [1, 0, 0]
    lru = approx_index(2, 10, lru_capacity=3)  # llm-d: one LRU per replica
    send(lru, 0, [1, 2, 3], 0.0)
    send(lru, 1, [1, 7], 0.0)
    send(lru, 0, [1, 4], 1.0)  # evicts 2, the least recently routed
    assert sizes(lru, np.zeros(2, dtype=np.int64)).tolist() == [3, 2] and believed(lru, [1, 2, 3]) == [1, 1]
    assert believed(lru, [1, 7, 4, 9], any_replica_run) == [2, 2]  # walks while any replica holds a block
    trim = approx_index(1, 10, trim_interval_s=30.0, trim_size=2)  # SGLang: periodic LRU cut
    send(trim, 0, [1, 2, 3, 4], 0.0)
    refresh(trim, 29.0)
    assert sizes(trim, np.zeros(1, dtype=np.int64)).tolist() == [4]
    refresh(trim, 30.0)
    assert sizes(trim, np.zeros(1, dtype=np.int64)).tolist() == [2] and believed(trim, [3, 4]) == [2]
    pruned = approx_index(2, 10, max_entries=4, prune_target_ratio=0.5)  # Dynamo: prune the oldest
    send(pruned, 0, [1, 2], 0.0)
    send(pruned, 1, [3, 4], 1.0)
    send(pruned, 0, [5], 2.0)  # 5 entries > 4: down to 2, the oldest (replica 0's 1, 2, then 3, 4) first
    assert sizes(pruned, np.zeros(2, dtype=np.int64)).tolist() == [1, 1]
    assert believed(pruned, [5]) == [1, 0] and believed(pruned, [4]) == [0, 1]


def test_router_draws_continue_pythons_seeded_random():
    """Routers draw in numba from `random.Random(f"{router}:{seed}")`'s stream:
    the same randrange, random and choices as Python's generator."""
    import random

    from prefix_study.cluster.routers._pick import choice_weighted, randrange, random_float, rng_state

    py, mt = random.Random("llmd:3"), rng_state("llmd", 3)
    weights = np.array([0.1, 0.5, 0.0, 0.7])
    for n in [1, 2, 3, 16, 17, 1000, 2**31 - 1] * 100:  # > 624 words: the state is regenerated
        assert randrange(mt, n) == py.randrange(n)
        assert random_float(mt) == py.random()
        assert choice_weighted(mt, weights) == py.choices(range(4), weights=weights.tolist())[0]
