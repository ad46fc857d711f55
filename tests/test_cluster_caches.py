"""Replica caches (cluster/caches/): one per online replay policy, each equal
to its policy's single-instance `prefix` replay (replay_hit_mask) hit for
hit when fed one request at a time, on random traces (hypothesis)."""

from __future__ import annotations

import functools

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefix_study.cluster.caches import CacheContext, cache_names, make_cache, unsupported_reason
from prefix_study.cluster.costs import cost_model
from prefix_study.cluster.requests import requests_from_trace
from prefix_study.config.compose import compose_config
from prefix_study.config.validate import ConfigError
from prefix_study.replay import encode_trace, replay_hit_mask
from prefix_study.replay.per_request import per_request_from_mask
from prefix_study.replay.policies import get_policy, policy_names
from prefix_study.replay.synthetic import trace_from_requests

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conversation_traces(draw, max_requests: int = 30):
    """A trace frame of conversations: a request continues a (possibly cut)
    earlier request of its conversation or starts a new one; two workloads
    and turn numbers in the request ids give several categories; 0-2
    trailing blocks are not looked up (prompt tail, output), some requests
    hold a partial tail block. Ids from a small alphabet, hashed chained or
    used raw (raw ids repeat within and across requests: orphans)."""
    n = draw(st.integers(1, max_requests))
    chain = draw(st.booleans())
    convs: list[tuple[str, list[int], int]] = []
    blocks, lookup, rids, workloads, partial = [], [], [], [], []
    for _ in range(n):
        if convs and draw(st.booleans()):
            c = draw(st.integers(0, len(convs) - 1))
            wl, prev, turn = convs[c]
            base, turn = prev[: draw(st.integers(0, len(prev)))], turn + 1
        else:
            c, wl, base, turn = len(convs), draw(st.sampled_from(["chat", "qa"])), [], 0
            convs.append((wl, [], 0))
        req = (base + draw(st.lists(st.integers(0, 6), min_size=0 if base else 1, max_size=6)))[:12] or [0]
        convs[c] = (wl, req, turn)
        k = draw(st.integers(max(0, len(req) - 2), len(req)))
        blocks.append(req)
        lookup.append([i < k for i in range(len(req))])
        rids.append(f"{wl}-{c}-{turn}")
        workloads.append(wl)
        partial.append(draw(st.booleans()))
    return with_request_columns(trace_from_requests(blocks, chain=chain, lookup=lookup), blocks, rids,
                                workloads, partial)


def with_request_columns(frame: pl.DataFrame, blocks: list[list[int]], request_ids: list[str],
                         workloads: list[str], partial: list[bool]) -> pl.DataFrame:
    """Per-request ids, workloads and partial-tail flags onto a trace_from_requests frame."""
    def per_row(values):
        return [v for v, b in zip(values, blocks) for _ in b]

    return frame.with_columns(
        pl.Series("request_id", per_row(request_ids)), pl.Series("workload", per_row(workloads)),
        (pl.Series(per_row(partial)) & (pl.col("position") == 0)).alias("partial_tail"))


BLOCK_SIZE = 16


@functools.cache
def config_cost_model():
    """The cluster stage's cost model of the default config (model on hardware)."""
    return cost_model(compose_config([]))


def serve_all(frame: pl.DataFrame, policy: str, capacity: int, cost=None) -> list[int]:
    """Per-request hits of one replica cache fed the trace request by request
    (cost: the cost model pricing recomputes; None: the stand-in)."""
    reqs = requests_from_trace(frame, BLOCK_SIZE)
    cache = make_cache(policy, capacity, CacheContext(reqs.num_categories, BLOCK_SIZE, cost))
    got = []
    for b, k, p, c in zip(reqs.blocks, reqs.n_lookup, reqs.partial_tail, reqs.category):
        seen = cache.overlap(b, k)
        got.append(cache.serve(b, k, p, c))
        assert got[-1] <= seen  # evictions inside the request can only shorten its prefix
        assert len(cache) <= max(capacity, 0)
    return got


def prefix_replay(frame: pl.DataFrame, policy: str, capacity: int, cost=None) -> list[int]:
    trace = encode_trace(frame)
    mask = replay_hit_mask(trace, policy, capacity, "prefix", cost, BLOCK_SIZE if cost else None)
    return per_request_from_mask(frame, trace, mask)["hit_blocks"].to_list()


@pytest.mark.parametrize("policy", cache_names())
@SETTINGS
@given(frame=conversation_traces(), capacity=st.one_of(st.integers(0, 14), st.just(1000)), priced=st.booleans())
def test_replica_cache_equals_the_prefix_replay_hit_for_hit(policy, frame, capacity, priced):
    cost = config_cost_model() if priced else None
    assert serve_all(frame, policy, capacity, cost) == prefix_replay(frame, policy, capacity, cost)


def test_every_online_policy_has_a_replica_cache():
    online = [p for p in policy_names() if not get_policy(p).needs_next_use]
    assert cache_names() == online
    assert "offline" in unsupported_reason("belady")
    assert unsupported_reason("lru") is None


def test_cluster_policy_accepts_every_cache_and_explains_belady():
    for policy in cache_names():
        assert compose_config([f"cluster.policy={policy}"]).cluster.policy == policy
    with pytest.raises(ConfigError, match=r"cluster\.policy='belady'.*offline.*routing"):
        compose_config(["cluster.policy=belady"])
    with pytest.raises(ConfigError, match=r"cluster\.policy='nope'.*arc"):
        compose_config(["cluster.policy=nope"])
