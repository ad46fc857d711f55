"""Property tests of the replay kernels on random traces (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefix_study.replay import encode_trace, infinite_cache_hits, policy_names, replay, replay_hit_mask
from prefix_study.replay.policies import get_policy
from prefix_study.replay.synthetic import trace_from_requests

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAPACITIES = (1, 2, 3, 5, 8, 13, 21)


@st.composite
def chained_requests(draw, max_requests: int = 30, max_new: int = 10):
    """Requests that extend a prefix of an earlier request with blocks from a
    small alphabet (so unrelated requests also collide), hashed chained."""
    n = draw(st.integers(1, max_requests))
    requests: list[list[int]] = []
    for _ in range(n):
        base: list[int] = []
        if requests and draw(st.booleans()):
            parent = requests[draw(st.integers(0, len(requests) - 1))]
            base = parent[: draw(st.integers(0, len(parent)))]
        new = draw(st.lists(st.integers(0, 4), min_size=0 if base else 1, max_size=max_new))
        requests.append((base + new) or [0])
    return requests


def any_requests():
    """Arbitrary (unchained) block ids: block-semantics properties hold for any trace."""
    return st.lists(st.lists(st.integers(0, 15), min_size=1, max_size=8), min_size=1, max_size=30)


def chained(requests):
    return encode_trace(trace_from_requests(requests))


def unchained(requests):
    return encode_trace(trace_from_requests(requests, chain=False))


@SETTINGS
@given(any_requests())
def test_block_lru_hits_never_decrease_with_capacity(requests):
    trace = unchained(requests)
    hits = [replay(trace, "lru", c, "block").hits for c in range(0, trace.num_ids + 2)]
    assert hits == sorted(hits)
    assert hits[-1] == infinite_cache_hits(trace)


@SETTINGS
@given(chained_requests())
def test_no_policy_beats_the_infinite_cache(requests):
    trace = chained(requests)
    bound = infinite_cache_hits(trace)
    for policy in policy_names():
        for sem in ("block", "prefix"):
            for cap in CAPACITIES:
                assert replay(trace, policy, cap, sem).hits <= bound, (policy, sem, cap)


@SETTINGS
@given(chained_requests())
def test_infinite_capacity_reaches_the_bound_in_both_semantics(requests):
    trace = chained(requests)
    bound = infinite_cache_hits(trace)
    for policy in policy_names():
        for sem in ("block", "prefix"):
            assert replay(trace, policy, trace.num_ids, sem).hits == bound, (policy, sem)


@SETTINGS
@given(st.one_of(chained_requests().map(chained), any_requests().map(unchained)))
def test_prefix_hits_never_exceed_block_hits_with_the_same_order(trace):
    # Same cache updates, stricter hit rule: access by access, a prefix hit is
    # a block hit. `lru` and `fifo` have their own prefix state machines (vLLM's free
    # queue), so the plain-LRU order is `lru_plain` (identical to `lru` under
    # block semantics).
    for policy in [p for p in policy_names() if get_policy(p).prefix_machine is None]:
        for cap in CAPACITIES:
            block = replay_hit_mask(trace, policy, cap, "block")
            prefix = replay_hit_mask(trace, policy, cap, "prefix")
            assert not np.any(prefix & ~block), (policy, cap)
    for cap in CAPACITIES:
        assert replay(trace, "lru_plain", cap, "prefix").hits <= replay(trace, "lru", cap, "block").hits


@SETTINGS
@given(any_requests())
def test_belady_is_optimal_under_block_semantics(requests):
    trace = unchained(requests)
    for cap in CAPACITIES:
        best = replay(trace, "belady", cap, "block").hits
        for policy in policy_names():
            assert replay(trace, policy, cap, "block").hits <= best, (policy, cap)
