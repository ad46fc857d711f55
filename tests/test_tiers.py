"""KV tiers below GPU memory (prefix_study.tiers): the config refuses bad
tiers before any job, GPU memory behaves as today's replay, an unbounded DRAM
tier reaches the infinite-cache bound, write and load policies do what their
definitions say on hand-made traces.

Every replay here uses `lru` in every tier: one specialisation of the tier
loop, compiled once and cached by numba."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from prefix_study.cli import EXIT_CONFIG, main
from prefix_study.config.compose import compose_config
from prefix_study.cost import CostModel, HardwareProfile, ModelProfile
from prefix_study.replay import encode_trace, replay_hit_mask
from prefix_study.replay.simulate import infinite_hit_mask
from prefix_study.replay.synthetic import trace_from_requests
from prefix_study.tiers.break_even import break_even_bytes_s, recompute_s
from prefix_study.tiers.replay import tier_replay
from prefix_study.tiers.spec import Hierarchy, TierSpec, hierarchy

BS = 16


@pytest.fixture(scope="module")
def profiles():
    cfg = compose_config()
    return ModelProfile.from_config(cfg.model), HardwareProfile.from_config(cfg.hardware), CostModel.from_config(cfg)


def dram(**kw) -> TierSpec:
    spec = TierSpec(name="dram", capacity_blocks=100, chunk_blocks=1, policy="lru", write_policy="write_through",
                    write_hits=2, read_bytes_s=1e9, write_bytes_s=1e9, latency_s=0.0, min_load_tokens=0,
                    links=("pcie",), scope="per_replica")
    return replace(spec, **kw)


def tiers(*lower: TierSpec, load_policy: str = "always", block_bytes: int = 1000) -> Hierarchy:
    return Hierarchy("test", load_policy, BS, block_bytes, None, None, tuple(lower))


def hand_trace(*requests: list[int]):
    return encode_trace(trace_from_requests([list(r) for r in requests]))


# --- config: refused at compose time, naming the key -----------------------------------


@pytest.mark.parametrize("overrides, key", [
    (["tiers=lmcache", "tiers.tiers.1.chunk_tokens=100"], "tiers.tiers[1].chunk_tokens"),
    (["tiers=vllm_cpu", "tiers.tiers.1.capacity=-1"], "tiers.tiers[1].capacity"),
    (["tiers=vllm_cpu", "tiers.tiers.1.read_bytes_s=0"], "tiers.tiers[1].read_bytes_s"),
    (["tiers=lmcache", "hardware.nvme_write_bytes_s=0"], "tiers.tiers[2].write_bytes_s"),
    (["tiers=vllm_cpu", "tiers.tiers.1.policy=mru_magic"], "tiers.tiers[1].policy"),
    (["tiers=vllm_cpu", "tiers.tiers.1.policy=belady"], "tiers.tiers[1].policy"),  # offline
    (["tiers=vllm_cpu", "tiers.tiers.0.write_policy=write_back"], "tiers.tiers[0].write_policy"),
    (["tiers=vllm_cpu", "tiers.tiers.1.write_policy=write_around"], "write_policy"),
    (["tiers=mooncake", "tiers.tiers.2.chunk_tokens=64"], "tiers.tiers[2].chunk_tokens"),  # write_back unit
    (["tiers=vllm_cpu", "tiers.load_policy=sometimes"], "tiers.load_policy"),
    (["tiers=vllm_cpu", "tiers.tiers.0.policy=vllm_arc"], "tiers.tiers[0].policy"),  # lower tiers only
    (["tiers=mooncake", "tiers.tiers.2.policy=vllm_arc"], "tiers.tiers[2].write_policy"),  # written through
])
def test_bad_tiers_are_refused_by_the_cli_naming_the_key(overrides, key, capsys):
    assert main(["--print-run-dir", *overrides]) == EXIT_CONFIG
    assert key in capsys.readouterr().err


def test_presets_resolve_with_sources(profiles):
    model, hardware, _ = profiles
    for name in ("gpu_only", "vllm_cpu", "lmcache", "sglang_hicache", "mooncake"):
        cfg = compose_config([f"tiers={name}"])
        assert cfg.tiers.source, name
        h = hierarchy(cfg.tiers, hardware, model, 32)
        assert h.gpu_capacity_blocks is None and h.gpu_policy is None  # the replay's
        assert len(h.lower) == {"gpu_only": 0, "vllm_cpu": 1}.get(name, 2)
    lm = hierarchy(compose_config(["tiers=lmcache"]).tiers, hardware, model, 32)
    assert [t.chunk_blocks for t in lm.lower] == [8, 8]  # 256-token chunks
    assert lm.lower[1].read_bytes_s == min(hardware.nvme_read_bytes_s, hardware.host_link_bytes_s)


# --- GPU memory is today's replay; an unbounded DRAM tier is the infinite cache -------


@pytest.mark.parametrize("lower", [
    (), (dram(capacity_blocks=0),), (dram(capacity_blocks=0), dram(name="ssd", capacity_blocks=0))])
def test_gpu_tier_equals_todays_prefix_replay(prefix_trace, lower):
    for capacity in (64, 256):
        res = tier_replay(prefix_trace, tiers(*lower), "lru", capacity)
        assert np.array_equal(res.gpu_hits, replay_hit_mask(prefix_trace, "lru", capacity, "prefix"))
        assert res.served_blocks[:, 1:].sum() == 0 and res.write_bytes.sum() == 0 and res.load_s.sum() == 0
        starts = np.flatnonzero(prefix_trace.flags & 1)
        per_request = np.add.reduceat((res.gpu_hits & prefix_trace.looked_up).astype(np.int64), starts)
        assert np.array_equal(res.served_blocks[:, 0], per_request)


def test_unbounded_dram_reaches_the_infinite_cache_bound(prefix_trace):
    res = tier_replay(prefix_trace, tiers(dram(capacity_blocks=-1)), "lru", 64)
    assert np.array_equal(res.gpu_hits, replay_hit_mask(prefix_trace, "lru", 64, "prefix"))  # GPU unchanged
    bound = infinite_hit_mask(prefix_trace) & prefix_trace.looked_up
    starts = np.flatnonzero(prefix_trace.flags & 1)
    assert np.array_equal(res.served_blocks.sum(axis=1), np.add.reduceat(bound.astype(np.int64), starts))
    assert res.served_blocks[:, 1].sum() > 0
    assert res.recomputed_blocks.sum() == prefix_trace.num_lookups - bound.sum()


# --- write policies on a hand-made trace ----------------------------------------------

A, B = [1, 2, 3], [4, 5, 6]


@pytest.mark.parametrize("policy, written, dram_served", [
    ("write_through", [3, 0, 0, 3, 0], 3),            # every block brought into GPU memory
    ("write_through_selective", [0, 0, 3, 0, 0], 3),  # A's blocks once served twice from cache
    ("write_back", [0, 0, 0, 3, 3], 3),               # GPU evictions: A by B, then B by A
])
def test_write_policies(policy, written, dram_served):
    # GPU memory holds 3 blocks (one request); A is served from GPU twice, B evicts it.
    trace = hand_trace(A, A, A, B, A)
    res = tier_replay(trace, tiers(dram(write_policy=policy)), "lru", 3)
    assert res.served_blocks[:, 0].tolist() == [0, 3, 3, 0, 0]
    assert res.served_blocks[:, 1].tolist() == [0, 0, 0, 0, dram_served]
    assert (res.write_bytes[:, 1] / 1000).tolist() == written
    assert res.read_bytes[4, 1] == 3000 and res.load_s[4] == pytest.approx(3000 / 1e9)
    assert np.array_equal(res.link_bytes["pcie"], res.read_bytes[:, 1] + res.write_bytes[:, 1])


def test_write_back_chains_down_and_chunks_are_whole():
    # DRAM holds one request (3 blocks); the SSD takes what DRAM evicts.
    trace = hand_trace(A, B, A)
    res = tier_replay(trace, tiers(dram(capacity_blocks=3), dram(name="ssd", capacity_blocks=-1,
                                                                 write_policy="write_back")), "lru", 3)
    assert res.served_blocks.tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 3]]
    assert (res.write_bytes / 1000).tolist() == [[0, 3, 0], [0, 3, 3], [0, 3, 3]]
    # 2-block chunks: only A's first chunk is whole, so 2 blocks come back and 1 is recomputed.
    res = tier_replay(trace, tiers(dram(chunk_blocks=2)), "lru", 3)
    assert res.served_blocks[2].tolist() == [0, 2] and res.recomputed_blocks[2] == 1


def test_min_tokens_skips_short_runs():
    trace = hand_trace(A, B, A, [4, 5, 6, 7, 8])
    h = tiers(dram(min_load_tokens=3 * BS), load_policy="min_tokens")
    res = tier_replay(trace, h, "lru", 3)
    assert res.served_blocks[2].tolist() == [0, 3]           # 3 blocks = 48 tokens: loaded
    h = tiers(dram(min_load_tokens=3 * BS + 1), load_policy="min_tokens")
    res = tier_replay(trace, h, "lru", 3)
    assert res.served_blocks[2].tolist() == [0, 0] and res.declined_blocks[2] == 3
    assert res.recomputed_blocks[2] == 3 and res.load_s[2] == 0


# --- load_policy=cost: load exactly when transfer beats recompute ---------------------


def test_cost_load_policy_break_even(profiles):
    model, hardware, cost_model = profiles
    trace = hand_trace(A, B, A)  # request 2 finds A's 3 blocks in DRAM only
    bb = model.kv_bytes_per_block(BS)
    # Recompute time of A's blocks 0..2: each block's marginal compute time
    # inside a prefill (the cost model's FLOPs are checked by hand in
    # test_cost.py); the load policy must switch exactly where loading costs more.
    recompute = sum(cost_model.compute_time_s(cost_model.prefill_flops((p + 1) * BS, p * BS))
                    for p in range(3))
    bw = 64e9
    transfer = 3 * bb / bw
    for margin, loads in ((+1e-7, False), (-1e-7, True)):
        latency = recompute - transfer + margin  # transfer time = latency + bytes / bandwidth
        h = tiers(dram(read_bytes_s=bw, latency_s=latency), load_policy="cost", block_bytes=bb)
        res = tier_replay(trace, h, "lru", 3, cost_model=cost_model)
        assert res.served_blocks[2].tolist() == ([0, 3] if loads else [0, 0])
        assert res.declined_blocks[2] == (0 if loads else 3)
        assert res.load_s[2] == (pytest.approx(latency + transfer) if loads else 0.0)
        always = tier_replay(trace, replace(h, load_policy="always"), "lru", 3, cost_model=cost_model)
        assert always.served_blocks[2].tolist() == [0, 3]


def test_break_even_bandwidth_is_where_cost_switches(profiles):
    model, _, cost_model = profiles
    trace = hand_trace(A, B, A)
    bb = model.kv_bytes_per_block(BS)
    latency = 1e-4
    be = break_even_bytes_s(cost_model, 3 * BS, BS, latency)
    assert 3 * bb / (recompute_s(cost_model, 3 * BS, BS) - latency) == pytest.approx(be)
    for factor, loads in ((1.001, True), (0.999, False)):
        h = tiers(dram(read_bytes_s=be * factor, latency_s=latency), load_policy="cost", block_bytes=bb)
        res = tier_replay(trace, h, "lru", 3, cost_model=cost_model)
        assert res.served_blocks[2, 1] == (3 if loads else 0)
    assert break_even_bytes_s(cost_model, 3 * BS, BS, latency_s=1.0) == float("inf")
