"""ARC, LFU, 2Q, wa_prob and cost_lru: exact agreement with libCacheSim where
it has the same algorithm, a reference implementation where it does not, and
the behaviour each policy exists for."""

from __future__ import annotations

import numpy as np
import pytest

from prefix_study.mixed.interleave import interleave_traces
from prefix_study.replay import encode_trace, policy_names, replay, replay_hit_mask
from prefix_study.replay.per_request import per_request_hits
from prefix_study.replay.synthetic import trace_from_requests

import libcachesim  # noqa: E402  (a dependency: missing means a failure, not a skip)

NEW_POLICIES = ("arc", "lfu", "lfu_plain", "twoq", "wa_prob", "cost_lru")


def libcachesim_hits(trace, cls, capacity: int) -> np.ndarray:
    cache = cls(cache_size=capacity)
    return np.array([cache.get(libcachesim.Request(obj_size=1, obj_id=int(x) + 1)) for x in trace.ids.tolist()])


def test_new_policies_are_registered():
    assert set(NEW_POLICIES) <= set(policy_names())


# 2Q from capacity 4: below it libCacheSim's A1in (a quarter) has no slot and
# admits nothing; ours keeps one slot (kernels/twoq.py).
@pytest.mark.parametrize("policy,cls", [("arc", libcachesim.ARC), ("lfu_plain", libcachesim.LFU),
                                        ("twoq", libcachesim.TwoQ)])
@pytest.mark.parametrize("capacity", [4, 7, 64, 500])
def test_block_semantics_equal_libcachesim(policy, cls, capacity, zipf_trace, prefix_trace):
    for trace in (zipf_trace, prefix_trace):
        ours = replay_hit_mask(trace, policy, capacity, "block")
        np.testing.assert_array_equal(ours, libcachesim_hits(trace, cls, capacity))


def reference_lfu_da(ids: list[int], capacity: int) -> list[bool]:
    """LFU-DA by its definition (Arlitt et al. 2000, unit cost and size):
    K = L + accesses since insertion, set on insertion and on every hit;
    evict the smallest K (ties: least recently used); L = evicted K."""
    key: dict[int, float] = {}
    count: dict[int, int] = {}
    last: dict[int, int] = {}
    age = 0.0
    out = []
    for t, x in enumerate(ids):
        if x in key:
            count[x] += 1
            key[x] = age + count[x]
            last[x] = t
            out.append(True)
            continue
        out.append(False)
        if len(key) == capacity:
            v = min(key, key=lambda y: (key[y], last[y]))
            age = key.pop(v)
            del count[v], last[v]
        count[x] = 1
        key[x] = age + 1
        last[x] = t
    return out


@pytest.mark.parametrize("capacity", [1, 3, 20, 150])
def test_lfu_aging_equals_reference(capacity, zipf_trace, prefix_trace):
    for trace in (zipf_trace, prefix_trace):
        ids = trace.ids[:4000]
        sub = trace_from_requests([ids.tolist()], chain=False)
        ours = replay_hit_mask(encode_trace(sub), "lfu", capacity, "block")
        expected = reference_lfu_da(encode_trace(sub).ids.tolist(), capacity)
        np.testing.assert_array_equal(ours, expected)


def test_lfu_aging_forgets_old_popularity():
    # Block 1 is hit 20 times, then never again; then pairs of blocks take
    # turns. Plain LFU keeps 1 for ever, so each pair thrashes the one slot
    # left; with aging the pairs' evictions raise L past 1's priority, 1 is
    # evicted and both blocks of a pair stay.
    requests = [[1]] * 20 + [[100 + 2 * k + j] for k in range(10) for _ in range(10) for j in (0, 1)]
    trace = encode_trace(trace_from_requests(requests, chain=False))
    assert replay(trace, "lfu_plain", 2, "block").hits == 19
    assert replay(trace, "lfu", 2, "block").hits > 19 + 100


def mixed_hot_cold(rounds: int = 40):
    """Workload `hot` repeats one 2-block request; `cold` sends fresh blocks."""
    hot = trace_from_requests([[1, 2]] * rounds, workload="hot")
    cold = trace_from_requests([[1000 + 2 * r, 1001 + 2 * r] for r in range(rounds)], workload="cold")
    return interleave_traces({"hot": hot, "cold": cold})


def test_wa_prob_learns_which_workload_is_reused():
    # Capacity 3: plain LRU evicts the hot request's head every round (2 cold
    # blocks in between); wa_prob learns that cold blocks are never reused
    # and evicts them instead.
    frame = mixed_hot_cold()
    trace = encode_trace(frame)
    wa = replay(trace, "wa_prob", 3, "prefix").hits
    assert replay(trace, "lru_plain", 3, "prefix").hits == 0
    assert wa > replay(trace, "lru", 3, "prefix").hits  # vLLM's tail-first LRU keeps only the head
    hot_rows = (frame["workload"] == "hot").to_numpy()
    hits = replay_hit_mask(trace, "wa_prob", 3, "prefix")
    assert wa == int(hits.sum())
    assert hits[hot_rows][-20:].all()  # after a short learning phase, every hot block hits


def test_wa_prob_categories_use_turn_index():
    # Request ids <workload>-<conversation>-<turn>: the turn is part of the category.
    frame = trace_from_requests([[1], [2], [3]], workload="chat")
    frame = frame.with_columns(
        frame["request_id"].str.replace(r"-(\d+)$", "-000001-0$1").alias("request_id")
    )
    trace = encode_trace(frame)
    assert trace.turns.tolist() == [0, 1, 2]
    cat, k = trace.categories()
    assert len(set(cat.tolist())) == 3 and k >= 3


def hits_per_request(requests, policy, capacity, semantics="prefix"):
    frame = trace_from_requests(requests)
    return per_request_hits(frame, capacity, policy, semantics)["hit_blocks"].to_list()


def test_cost_lru_evicts_cheap_leaves_and_never_a_parent_first():
    # Y's leaf (position 3, cost 4) outweighs X's single block (cost 1): Z
    # evicts X although X is more recent, and Y's chain stays whole. Plain
    # LRU evicts Y's head (least recent), which strands the rest of Y.
    y, x, z = [2, 3, 4, 5], [1], [7]
    assert hits_per_request([y, x, z, y], "cost_lru", 5) == [0, 0, 0, 4]
    assert hits_per_request([y, x, z, y], "lru_plain", 5) == [0, 0, 0, 0]
    # Equal costs on a single chain: the tail goes first, like vLLM's free queue.
    assert hits_per_request([[1, 2, 3], [9], [1, 2, 3]], "cost_lru", 3) == [0, 0, 2]


@pytest.mark.parametrize("policy", NEW_POLICIES)
def test_new_policies_run_on_both_semantics_and_are_deterministic(policy, prefix_trace):
    for sem in ("block", "prefix"):
        a = replay_hit_mask(prefix_trace, policy, 64, sem)
        b = replay_hit_mask(prefix_trace, policy, 64, sem)
        np.testing.assert_array_equal(a, b)
        assert 0 < int(a.sum()) <= int(replay_hit_mask(prefix_trace, "belady", 10**6, "block").sum())


# --- cost_lru's recompute cost -------------------------------------------------

def greedy_dual_leaves(trace, cost, capacity, prefix):
    """Reference cost_lru (kernels/cost_lru.py's definition, by brute force):
    H = L + cost on insertion and hit; evict the cached prefix-tree leaf of
    least (H, last use); L = its H."""
    cached, parent, children, value, seq = set(), {}, {}, {}, {}
    inflation, run, prev, hits = 0.0, True, -1, []
    for i, (x, f) in enumerate(zip(trace.ids.tolist(), trace.flags.tolist())):
        start = bool(f & 1)
        if x not in parent:
            parent[x] = -1 if start or prev < 0 else prev
        prev = x
        hit = x in cached
        if start:
            run = True
        if prefix:
            hit = hit and run
            run = hit
        hits.append(hit)
        value[x], seq[x] = inflation + cost[i], i
        if x in cached:
            continue
        if len(cached) == capacity:
            victim = min((b for b in cached if children.get(b, 0) == 0), key=lambda b: (value[b], seq[b]))
            inflation = value[victim]
            cached.remove(victim)
            if parent[victim] >= 0:
                children[parent[victim]] -= 1
            value[x] = inflation + cost[i]
        cached.add(x)
        if parent[x] >= 0:
            children[parent[x]] = children.get(parent[x], 0) + 1
    return np.array(hits)


@pytest.fixture(scope="module")
def cost_model():
    from prefix_study.config.compose import compose_config
    from prefix_study.cost import CostModel

    return CostModel.from_config(compose_config([]))  # llama3_8b on h100_sxm (conf/config.yaml)


def test_recompute_cost_comes_from_the_cost_model_and_grows_with_position(cost_model):
    from prefix_study.replay.simulate import recompute_cost

    position = np.arange(0, 2000, dtype=np.int32)
    for bs in (16, 32, 64):
        cost = recompute_cost(position, bs, cost_model)
        assert np.all(np.diff(cost) > 0)  # monotone: attention covers every earlier token
        flops = cost_model.linear_flops(bs) + cost_model.attention_flops(bs, 7 * bs)
        assert cost[7] == pytest.approx(flops / (cost_model.hardware.peak_flops(cost_model.precision)
                                                 * cost_model.num_gpus * cost_model.compute_efficiency))
        # Linear in position: equal steps of attention over one more block.
        np.testing.assert_allclose(np.diff(cost, 2), np.diff(cost, 2)[0], rtol=1e-6, atol=1e-15)
        # Below a one-block prefill's own (weight-read bound) time, above zero.
        assert 0 < cost[0] < float(cost_model.prefill_time_s(bs, 0))
    np.testing.assert_array_equal(recompute_cost(position), 1.0 + position)  # stand-in without a model
    with pytest.raises(ValueError, match="block_size"):
        recompute_cost(position, None, cost_model)


def test_cost_lru_hits_follow_the_cost_source(cost_model, prefix_trace):
    from prefix_study.replay.simulate import recompute_cost
    from prefix_study.replay.sweep import hit_rate_rows

    masks = {}
    for cap in (8, 40):
        for sem in ("block", "prefix"):
            for name, (cm, bs) in {"stand-in": (None, None), "model": (cost_model, 32)}.items():
                got = replay_hit_mask(prefix_trace, "cost_lru", cap, sem, cm, bs)
                ref = greedy_dual_leaves(prefix_trace, recompute_cost(prefix_trace.positions, bs, cm), cap,
                                         sem == "prefix")
                np.testing.assert_array_equal(got, ref)
                masks[cap, sem, name] = got
    # The model's costs are flatter than 1 + position (a weight-read floor), so evictions differ.
    assert any(not np.array_equal(masks[k[:2] + ("stand-in",)], masks[k[:2] + ("model",)]) for k in masks)
    # The sweep passes its cost model through to the replay.
    row = hit_rate_rows(prefix_trace, "w", 32, ["cost_lru"], ["prefix"], [40], cost_model)[0]
    assert row["hits"] == int((masks[40, "prefix", "model"] & prefix_trace.looked_up).sum())
