"""KV tiers below GPU memory (prefix_study.tiers): the config refuses bad
tiers before any job, GPU memory behaves as today's replay, an unbounded DRAM
tier reaches the infinite-cache bound, write and load policies do what their
definitions say on hand-made traces.

Every replay here uses `lru` in every tier: one specialisation of the tier
loop, compiled once and cached by numba."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
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
    (["tiers=vllm_cpu", "tiers.study.tier=2"], "tiers.study.tier"),
    (["tiers=vllm_cpu", "tiers.study.break_even_hardware=[tpu_v9]"], "tiers.study.break_even_hardware"),
    (["tiers=vllm_cpu", "tiers.tiers.0.policy=vllm_arc"], "tiers.tiers[0].policy"),  # lower tiers only
    (["tiers=mooncake", "tiers.tiers.2.policy=vllm_arc"], "tiers.tiers[2].write_policy"),  # written through
])
def test_bad_tiers_are_refused_by_the_cli_naming_the_key(overrides, key, capsys):
    assert main(["--print-run-dir", *overrides]) == EXIT_CONFIG
    assert key in capsys.readouterr().err


def test_presets_resolve_with_sources(profiles):
    model, hardware, _ = profiles
    resolved = {}
    for name in ("gpu_only", "vllm_cpu", "lmcache", "sglang_hicache", "mooncake"):
        cfg = compose_config([f"tiers={name}"])
        assert cfg.tiers.source, name
        h = resolved[name] = hierarchy(cfg.tiers, hardware, model, 32)
        assert h.gpu_capacity_blocks is None and h.gpu_policy is None  # the replay's
        assert len(h.lower) == {"gpu_only": 0, "vllm_cpu": 1}.get(name, 2)
    lm = resolved["lmcache"]
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


# --- cluster: replicas take the tiers; a shared pool is one state -----------------------


def _requests(*requests: list[int]):
    from prefix_study.cluster.requests import requests_from_trace

    return requests_from_trace(trace_from_requests([list(r) for r in requests]), BS)


@pytest.mark.parametrize("scope", ["per_replica", "shared"])
def test_one_replica_with_tiers_is_the_tier_replay(profiles, scope):
    from prefix_study.cluster.requests import requests_from_trace
    from prefix_study.cluster.simulate import simulate
    from prefix_study.cluster.tiered import with_scope
    from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace

    _, _, cost_model = profiles
    reqs = requests_from_trace(synthetic_trace(SyntheticTraceConfig(num_requests=200, seed=3)), BS)
    h = with_scope(tiers(dram(capacity_blocks=40), dram(name="ssd", capacity_blocks=-1, write_policy="write_back")),
                   scope)
    ref = tier_replay(reqs.trace, h, "lru", 32)
    run = simulate(reqs, 1, "round_robin", None, {}, "lru", 32, cost_model, 4, tiers=h)
    assert np.array_equal(run.tier_blocks, ref.served_blocks) and np.array_equal(run.load_s, ref.load_s)
    assert run.tier_blocks[:, 1:].sum() > 0
    assert np.array_equal(run.hit_blocks, ref.served_blocks.sum(axis=1))


def test_shared_pool_serves_across_replicas_and_empty_tiers_change_nothing(profiles):
    from prefix_study.cluster.simulate import simulate
    from prefix_study.cluster.tiered import with_scope

    _, _, cost_model = profiles
    # Round robin over 2 replicas of 3 GPU blocks and 5 DRAM blocks each:
    # A on replica 0, B on 1, C on 0, then A on replica 1.
    reqs = _requests(A, B, [7, 8, 9], A)
    h = tiers(dram(capacity_blocks=5))
    own = simulate(reqs, 2, "round_robin", None, {}, "lru", 3, cost_model, 4, tiers=with_scope(h, "per_replica"))
    pool = simulate(reqs, 2, "round_robin", None, {}, "lru", 3, cost_model, 4, tiers=with_scope(h, "shared"))
    # Replica 1 served B then A: its own DRAM never saw A; the pool (2 x 5 blocks) holds A, B and C.
    assert own.tier_blocks[3].tolist() == [0, 0] and pool.tier_blocks[3].tolist() == [0, 3]
    assert pool.load_s[3] == pytest.approx(3000 / 1e9) and own.load_s[3] == 0
    plain = simulate(reqs, 2, "round_robin", None, {}, "lru", 3, cost_model, 4)
    empty = simulate(reqs, 2, "round_robin", None, {}, "lru", 3, cost_model, 4, tiers=tiers(dram(capacity_blocks=0)))
    for field in ("replica", "hit_blocks", "cached_tokens", "first_token_s", "finish_s"):
        assert np.array_equal(getattr(plain, field), getattr(empty, field)), field


# --- the tiers stage -----------------------------------------------------------------


def test_tiers_stage_tables(tmp_path, profiles):
    from prefix_study.io import write_parquet
    from prefix_study.tiers.stage import run

    model, _, _ = profiles
    paths = {}
    for w, reqs in (("a", [A, A, B, A, [1, 2, 3, 4]]), ("b", [B, [4, 5], B, [9, 9, 9]])):
        paths[w] = tmp_path / f"{w}.parquet"
        write_parquet(trace_from_requests(reqs, workload=w), paths[w])
    gpu_tokens = 3 * 32  # GPU memory: 3 blocks of mix.block_size 32
    cfg = compose_config(["tiers=vllm_cpu", "mix.block_size=32", "tiers.study.gpu_capacity=" + str(gpu_tokens),
                          "tiers.study.gpu_capacity_unit=tokens", "tiers.tiers.1.capacity_unit=blocks",
                          "tiers.study.capacities=[0,2,100]", "tiers.study.read_bytes_s=[1e9,64e9]",
                          "tiers.study.prefix_tokens=[1024,8192]", "tiers.study.break_even_models=[]",
                          "tiers.study.break_even_hardware=[h100_sxm,l40s]"])
    table = run(cfg, paths, {}, {}, tmp_path / "out")
    assert table["workload"].unique(maintain_order=True).to_list() == ["a", "b", "mixed"]
    assert table.height == 3 * (1 + 3 + 2)
    # Every looked-up token is served by one tier or recomputed.
    assert (table["gpu_tokens"] + table["tier1_tokens"] + table["recomputed_tokens"]
            == table["lookup_tokens"]).all()
    cap = table.filter(pl.col("point") == "capacity").sort("workload", "swept_capacity")
    a = cap.filter(pl.col("workload") == "a")
    # B evicts A from GPU memory; a DRAM of 2 blocks lost A's first block (then
    # nothing after it counts: prefix rule), one of 100 gives all 3 back.
    assert a["tier1_tokens"].to_list() == [0, 0, 3 * 32]
    assert a["gpu_tokens"].n_unique() == 1  # GPU memory does not depend on the tiers below
    slow, fast = table.filter((pl.col("point") == "read_bytes_s") & (pl.col("workload") == "a")) \
        .sort("swept_read_bytes_s").iter_rows(named=True)
    assert slow["ttft_p99_s"] > fast["ttft_p99_s"] and slow["tier1_tokens"] == fast["tier1_tokens"]
    be = pl.read_parquet(tmp_path / "out" / "break_even.parquet")
    assert be.height == 2 * 2 and set(be["hardware"]) == {"h100_sxm", "l40s"}
    assert be["model"].unique().to_list() == [model.name]
    assert (be["loading_wins"] == (be["tier_read_bytes_s"] > be["break_even_bytes_s"])).all()
    for name in ("tiers.md", "break_even.md"):
        assert (tmp_path / "out" / name).read_text().startswith("# ")
    from prefix_study.figures.tiers import plot_tier_tokens, plot_tier_ttft

    files = plot_tier_tokens(table, tmp_path / "tier_tokens") + plot_tier_ttft(table, tmp_path / "tier_ttft")
    assert [f.name for f in files] == ["tier_tokens.png", "tier_tokens.svg", "tier_ttft.png", "tier_ttft.svg"]


def test_gpu_only_runs_no_tiers_stage_and_its_config_reruns_nothing():
    from prefix_study.config.hashing import STAGES, stage_hash
    from prefix_study.pipeline import PipelinePaths

    base = compose_config()
    moved = compose_config(["tiers.study.capacities=[1,2]", "tiers.study.break_even_models=[llama2_7b]"])
    assert not PipelinePaths(base).tiers_run and "tiers" not in PipelinePaths(base).stages_run
    assert all(stage_hash(base, s) == stage_hash(moved, s) for s in STAGES)
    with_tiers = compose_config(["tiers=vllm_cpu"])
    assert PipelinePaths(with_tiers).tiers_run
    assert stage_hash(with_tiers, "cluster") != stage_hash(base, "cluster")
    assert stage_hash(with_tiers, "replay") == stage_hash(base, "replay")


@pytest.mark.pipeline
@pytest.mark.engine
def test_tiers_stage_in_the_dag(tiny_copy):
    """With a tier below GPU memory (a copy of) the shared tiny run plans one tiers job
    (and reruns the cluster, figures and run index, nothing upstream); the
    job writes the table from the run's traces."""
    from pipeline_run import UPSTREAM_RULES, job_stats, prefix_study

    from prefix_study.pipeline import PipelinePaths

    overrides, _, _ = tiny_copy
    ov = [*overrides, "tiers=vllm_cpu", "tiers.study.capacities=[0,1]", "tiers.study.read_bytes_s=[1e9]",
          "tiers.study.break_even_models=[]", "tiers.study.break_even_hardware=[]"]
    paths = PipelinePaths(compose_config(ov))
    proc = prefix_study("-n", *ov)
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats["tiers"] == 1 and stats["cluster"] == 1 and stats["figures"] == 1
    assert not UPSTREAM_RULES & set(stats) and not {"replay", "mixed", "savings", "stats"} & set(stats)
    assert prefix_study(*ov, "--", str(paths.tiers("tiers.parquet"))).returncode == 0
    table = pl.read_parquet(paths.tiers("tiers.parquet"))
    assert "mixed" in table["workload"].to_list() and table.height == len(set(table["workload"])) * 4
    assert (table["gpu_tokens"] + table["tier1_tokens"] + table["recomputed_tokens"] == table["lookup_tokens"]).all()
