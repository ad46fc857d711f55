"""Replica caches (cluster/replicas.py): every online policy's `serve`,
called one request at a time as a cluster replica calls it, equals its
whole-trace `prefix` replay (replay_hit_mask, which calls the same `serve`
over runs of whole requests) hit for hit on random traces (hypothesis); what
it reports as evicted really left the cache."""

from __future__ import annotations

import functools

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefix_study.cluster.costs import cost_model
from prefix_study.cluster.replicas import ReplicaCaches, replica_policy_names, unsupported_reason
from prefix_study.cluster.requests import ClusterRequests, requests_from_trace
from prefix_study.config.compose import compose_config
from prefix_study.config.validate import ConfigError
from prefix_study.replay import replay_hit_mask
from prefix_study.replay.per_request import per_request_from_mask
from prefix_study.replay.policies import get_policy, policy_names
from prefix_study.replay.synthetic import trace_from_requests
from prefix_study.replay.trace import BlockTrace

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
def default_config():
    """compose_config([]), once per session (test_cluster.py shares it)."""
    return compose_config([])


@functools.cache
def config_cost_model():
    """The cluster stage's cost model of the default config (model on hardware)."""
    return cost_model(default_config())


def serve_all(reqs: ClusterRequests, policy: str, capacity: int, cost=None) -> list[int]:
    """Per-request hits of one replica cache fed the requests one by one
    (cost: the cost model pricing recomputes; None: the stand-in)."""
    caches = ReplicaCaches(reqs.trace, policy, 1, capacity, reqs.max_request_blocks(), cost,
                           BLOCK_SIZE if cost else None)
    ids = reqs.trace.ids
    check = capacity < 1000  # (with 1000 nothing is evicted)
    got = []
    after: set[int] = set()
    for s, e in zip(reqs.start, reqs.end):
        [seen], _ = caches.look(s, e)
        before = after
        h, n_evicted = caches.serve(0, s, e)
        got.append(h)
        assert h <= seen  # evictions inside the request can only shorten its prefix
        [size] = caches.look(0, 0)[1]
        assert size <= max(capacity, 0)
        if not check:
            continue
        request = set(ids[s:e].tolist())
        # Only blocks cached before or accessed now can be cached now; the
        # size check below catches any other.
        after = set(caches.holds(0, sorted(before | request)))
        # fifo's and sieve's pools hold blocks as copies: an evicted one may leave another behind.
        physical = policy in ("fifo", "sieve")
        assert physical or size == len(after)
        for v in caches.evicted[:n_evicted].tolist():
            assert v in before or v in request
            assert physical or v not in after or v in request
        assert n_evicted >= len(before - after - request)
    return got


def prefix_replay(frame: pl.DataFrame, trace: BlockTrace, policy: str, capacity: int, cost=None) -> list[int]:
    mask = replay_hit_mask(trace, policy, capacity, "prefix", cost, BLOCK_SIZE if cost else None)
    return per_request_from_mask(frame, trace, mask)["hit_blocks"].to_list()


@SETTINGS
@given(frame=conversation_traces(), capacity=st.one_of(st.integers(0, 14), st.just(1000)), priced=st.booleans())
def test_replica_serve_equals_the_whole_trace_prefix_replay(frame, capacity, priced):
    """Every online policy on each drawn trace (so each sees max_examples traces)."""
    cost = config_cost_model() if priced else None
    reqs = requests_from_trace(frame, BLOCK_SIZE)
    for policy in replica_policy_names():
        assert serve_all(reqs, policy, capacity, cost) == prefix_replay(frame, reqs.trace, policy, capacity, cost), \
            policy


def test_every_online_policy_runs_on_a_replica():
    online = [p for p in policy_names() if get_policy(p).online]
    assert replica_policy_names() == online
    assert [p for p in policy_names() if p not in online] == ["belady"]
    assert "offline" in unsupported_reason("belady")
    assert unsupported_reason("lru") is None


def test_cluster_policy_accepts_every_online_policy_and_explains_belady():
    from omegaconf import OmegaConf

    from prefix_study.config.validate import validate_cluster

    base = default_config()
    for policy in replica_policy_names():  # what compose_config([f"cluster.policy={policy}"]) checks of it
        validate_cluster(OmegaConf.merge(base, {"cluster": {"policy": policy}}))
    with pytest.raises(ConfigError, match=r"cluster\.policy='belady'.*offline.*routing"):
        compose_config(["cluster.policy=belady"])
    with pytest.raises(ConfigError, match=r"cluster\.policy='nope'.*arc"):
        validate_cluster(OmegaConf.merge(base, {"cluster": {"policy": "nope"}}))
