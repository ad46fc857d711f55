"""Replay kernels: exact agreement with libCacheSim (block semantics), vLLM's
free-queue behaviour (prefix semantics), and the stage writer."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from prefix_study.config.schema import SweepConfig
from prefix_study.io import write_parquet
from prefix_study.replay import (
    encode_trace,
    infinite_cache_hits,
    policy_names,
    replay,
    replay_hit_mask,
    write_hit_rates,
)
from prefix_study.replay.per_request import per_request_hits
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests

import libcachesim  # noqa: E402  (a dependency: missing means a failure, not a skip)


def libcachesim_hits(trace, cls, capacity: int) -> np.ndarray:
    """Per-access hits of a libCacheSim policy (object size 1: capacity in blocks)."""
    cache = cls(cache_size=capacity)
    nxt = trace.next_use
    never = np.iinfo(np.int64).max
    out = np.empty(trace.accesses, dtype=bool)
    for i, x in enumerate(trace.ids.tolist()):
        req = libcachesim.Request(obj_size=1, obj_id=x + 1,
                                  next_access_vtime=int(nxt[i]) if nxt[i] != never else never)
        out[i] = cache.get(req)
    return out


REFERENCE = {
    "lru": libcachesim.LRU,
    "fifo": libcachesim.FIFO,
    "sieve": libcachesim.Sieve,
    "s3fifo": libcachesim.S3FIFO,
    "belady": libcachesim.Belady,
}


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("capacity", [1, 7, 64, 500])
@pytest.mark.parametrize("which", ["zipf_trace", "prefix_trace"])
def test_block_lru_fifo_equal_libcachesim(policy, capacity, which, request):
    trace = request.getfixturevalue(which)
    ours = replay_hit_mask(trace, policy, capacity, "block")
    ref = libcachesim_hits(trace, REFERENCE[policy], capacity)
    assert int(ours.sum()) == int(ref.sum())
    np.testing.assert_array_equal(ours, ref)  # access by access, not just in total


@pytest.mark.parametrize("policy", ["sieve", "s3fifo", "belady"])
@pytest.mark.parametrize("capacity", [20, 64, 500])
def test_block_stronger_policies_equal_libcachesim(policy, capacity, zipf_trace, prefix_trace):
    # S3-FIFO from capacity 20: below it libCacheSim's small FIFO (10%) holds
    # less than one object and it admits nothing; ours keeps one slot.
    for trace in (zipf_trace, prefix_trace):
        ours = replay_hit_mask(trace, policy, capacity, "block")
        np.testing.assert_array_equal(ours, libcachesim_hits(trace, REFERENCE[policy], capacity))


def test_default_config_policies_are_registered():
    assert set(SweepConfig().policies) <= set(policy_names())


def hits_per_request(requests, policy, capacity, semantics="prefix", **kw):
    frame = trace_from_requests(requests, **kw)
    return per_request_hits(frame, capacity, policy, semantics)["hit_blocks"].to_list()


def test_prefix_lru_releases_tail_first():
    # After A, vLLM's free queue is [a2, a1, a0] (a2 evicted first): B's block
    # evicts A's tail and A's head survives. Plain LRU evicts A's head (a0,
    # least recent), which breaks A's whole prefix; block-LRU then misses
    # every block in turn (each insertion evicts the next block needed).
    a, b = [1, 2, 3], [9]
    assert hits_per_request([a, b, a], "lru", 3) == [0, 0, 2]
    assert hits_per_request([a, b, a], "lru_plain", 3) == [0, 0, 0]
    assert hits_per_request([a, b, a], "lru", 3, semantics="block") == [0, 0, 0]


def test_prefix_hit_stops_at_first_miss():
    # Block 2 of the second request is cached but follows a miss: vLLM
    # recomputes it (no hit) under prefix semantics; block semantics hits it.
    frame = trace_from_requests([[1, 2, 3], [1, 2, 3]], chain=False)
    trace = encode_trace(frame)
    assert replay(trace, "fifo", 10, "block").hits == 3
    assert replay(trace, "fifo", 10, "prefix").hits == 3
    frame = trace_from_requests([[1, 2, 3], [7, 2, 3]], chain=False)
    trace = encode_trace(frame)
    assert replay(trace, "fifo", 10, "block").hits == 2
    assert replay(trace, "fifo", 10, "prefix").hits == 0


def test_prefix_lru_request_longer_than_capacity_caches_what_fits():
    # 4 blocks, capacity 2: the excess blocks cannot be allocated (all blocks
    # are held by the running request), so only the first two are cached.
    assert hits_per_request([[1, 2, 3, 4], [1, 2, 3, 4]], "lru", 2) == [0, 2]


def test_not_looked_up_blocks_are_stored_but_not_counted():
    # Output blocks (lookup false) enter the cache and serve the next turn.
    frame = trace_from_requests([[1, 2, 3], [1, 2, 3, 4]],
                                lookup=[[True, False, False], [True, True, True, False]])
    trace = encode_trace(frame)
    for sem in ("block", "prefix"):
        r = replay(trace, "lru", 100, sem)
        assert (r.accesses, r.hits) == (4, 3)
    assert infinite_cache_hits(trace) == 3


@pytest.mark.engine  # imports vLLM (~10 s)
def test_vllm_block_pool_agrees_with_prefix_lru():
    """Drive vLLM's own BlockPool one request at a time and compare hits."""
    from vllm.v1.core import block_pool
    from vllm.v1.core.kv_cache_utils import make_block_hash_with_group_id

    frame = synthetic_trace(SyntheticTraceConfig(num_requests=300, seed=11, max_request_blocks=48))
    rows = frame.select("request_id", "block_hash").rows()
    requests: list[list[int]] = []
    last = None
    for rid, h in rows:
        if rid != last:
            requests.append([])
            last = rid
        requests[-1].append(h)
    for capacity in (48, 100, 400):
        pool = block_pool.BlockPool(capacity + 1, enable_caching=True, hash_block_size=1)  # + null block
        expected = []
        for blocks in requests:
            keys = [make_block_hash_with_group_id(h.to_bytes(8, "big"), 0) for h in blocks]
            hit = []
            for key in keys:
                cached = pool.cached_block_hash_to_block.get_one_block(key)
                if cached is None:
                    break
                hit.append(cached)
            pool.touch(hit)
            new = pool.get_new_blocks(len(blocks) - len(hit))
            for i, blk in enumerate(new, start=len(hit)):
                pool._insert_block_hash(keys[i], blk, num_tokens=i + 1)
            pool.free_blocks(reversed(hit + new))
            expected.append(len(hit))
        ours = per_request_hits(frame, capacity, "lru", "prefix")["hit_blocks"].to_list()
        assert ours == expected, f"capacity {capacity}"


def test_write_hit_rates(tmp_path):
    paths = {}
    for w, seed in (("a", 1), ("b", 2)):
        for bs in (16, 32):
            p = tmp_path / "traces" / w / f"b{bs}.parquet"
            write_parquet(synthetic_trace(SyntheticTraceConfig(num_requests=60, seed=seed + bs, workload=w)), p)
            paths[(w, bs)] = p
    sweep = SweepConfig(capacities=[16, 256], policies=["lru", "fifo", "s3fifo", "belady"])
    table = write_hit_rates(paths, sweep, tmp_path / "replay/hit_rates.parquet", tmp_path / "replay/hit_rates.md")
    assert table.columns == ["workload", "block_size", "policy", "semantics", "capacity_blocks",
                             "accesses", "hits", "hit_rate"]
    assert table.height == 4 * 4 * 2 * 2
    assert pl.read_parquet(tmp_path / "replay/hit_rates.parquet").equals(table)
    assert (table["hits"] <= table["accesses"]).all()
    assert "cap 256" in (tmp_path / "replay/hit_rates.md").read_text()
