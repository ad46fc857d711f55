"""Model/hardware profiles, capacity units and the roofline cost model."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from prefix_study.config.compose import compose_config
from prefix_study.config.validate import ConfigError
from prefix_study.cost import (
    GIB,
    CostModel,
    HardwareProfile,
    ModelProfile,
    capacity_blocks,
    capacity_gib,
    capacity_tokens,
)

CONF = Path(__file__).resolve().parents[1] / "conf"

#: KV bytes per token by hand: 2 (K,V) x layers x KV heads x head dim x 2 bytes
#: (bf16/fp16); MLA: layers x (kv_lora_rank + qk_rope_head_dim) x 2 bytes.
HAND_KV_BYTES_PER_TOKEN = {
    "llama3_8b": 2 * 32 * 8 * 128 * 2,        # 131,072
    "llama3_70b": 2 * 80 * 8 * 128 * 2,       # 327,680
    "qwen2_5_7b": 2 * 28 * 4 * 128 * 2,       # 57,344
    "qwen3_8b": 2 * 36 * 8 * 128 * 2,         # 147,456
    "qwen3_32b": 2 * 64 * 8 * 128 * 2,        # 262,144
    "mistral_7b": 2 * 32 * 8 * 128 * 2,       # 131,072
    "deepseek_v3": 61 * (512 + 64) * 2,       # 70,272
    "llama2_7b": 2 * 32 * 32 * 128 * 2,       # 524,288
    "llama2_70b": 2 * 80 * 8 * 128 * 2,       # 327,680
    "llama2_13b": 2 * 40 * 40 * 128 * 2,      # 819,200
    "mixtral_8x7b": 2 * 32 * 8 * 128 * 2,     # 131,072
}


@lru_cache(maxsize=None)
def _profile(name: str) -> ModelProfile:
    return ModelProfile.from_config(compose_config([f"model={name}"]).model)


def test_every_model_profile_has_a_hand_calculation():
    names = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    assert names == sorted(HAND_KV_BYTES_PER_TOKEN)


@pytest.mark.parametrize("name", sorted(HAND_KV_BYTES_PER_TOKEN))
def test_kv_bytes_per_token_equal_hand_calculation(name):
    profile = _profile(name)
    assert profile.kv_bytes_per_token() == HAND_KV_BYTES_PER_TOKEN[name]
    assert profile.kv_bytes_per_block(16) == 16 * HAND_KV_BYTES_PER_TOKEN[name]
    assert profile.source.startswith("https://huggingface.co/")


def test_llama3_8b_is_the_issue_example():
    assert _profile("llama3_8b").kv_bytes_per_token() == 131072


@pytest.mark.parametrize("name", ["llama3_8b", "llama3_70b", "qwen2_5_7b", "qwen3_8b", "qwen3_32b",
                                  "mistral_7b", "llama2_7b", "llama2_70b", "llama2_13b"])
def test_parameter_counts_match_the_architecture(name):
    """The published parameter count agrees with the config's shape (norms and
    biases are left out of the shape count: < 0.2%)."""
    profile = _profile(name)
    assert profile.dense_param_count() == pytest.approx(profile.num_params, rel=2e-3)


@pytest.mark.parametrize("name", ["h100_sxm", "h200", "a100_80gb", "l40s"])
def test_hardware_profiles_load(name):
    hw = HardwareProfile.from_config(compose_config([f"hardware={name}"]).hardware)
    assert hw.name == name and hw.peak_bf16_flops > 1e14 and hw.mem_bandwidth_bytes_s > 5e11
    assert hw.source.startswith("https://www.nvidia.com/")


@pytest.mark.parametrize("override, key, value", [("model=gpt7_imaginary", "model", "gpt7_imaginary"),
                                                  ("hardware=tpu_v9", "hardware", "tpu_v9")])
def test_unknown_model_or_hardware_fails_naming_the_key(override, key, value):
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert f"'{key}/{value}'" in str(err.value)


def test_unknown_model_fails_before_any_job(capsys):
    """The console command composes every configuration before Snakemake runs."""
    from prefix_study.cli import EXIT_CONFIG, main

    assert main(["-n", "model=gpt7_imaginary"]) == EXIT_CONFIG
    assert "model/gpt7_imaginary" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["llama3_8b", "deepseek_v3", "qwen2_5_7b"])
@pytest.mark.parametrize("block_size", [16, 32, 64])
def test_gib_blocks_gib_round_trip(name, block_size):
    model = _profile(name)
    for blocks in (1, 7, 64, 512, 100_000):
        gib = capacity_gib(blocks, "blocks", block_size, model)
        assert capacity_blocks(gib, "gib", block_size, model) == blocks
        assert capacity_gib(gib, "gib", block_size, model) == pytest.approx(gib, rel=1e-12)
    for gib in (0.25, 1.0, 3.3):
        blocks = capacity_blocks(gib, "gib", block_size, model)
        back = capacity_gib(blocks, "blocks", block_size, model)
        assert back <= gib < back + model.kv_bytes_per_block(block_size) / GIB


def test_capacity_units_by_hand():
    model = _profile("llama3_8b")  # 131,072 B/token: one GiB holds 8,192 tokens
    assert capacity_blocks(1.0, "gib", 16, model) == 512
    assert capacity_blocks(1.0, "gib", 64, model) == 128
    assert capacity_tokens(1.0, "gib", 32, model) == 8192
    assert capacity_blocks(100, "tokens", 32, model) == 3
    assert capacity_tokens(100, "tokens", 32, model) == 96
    assert capacity_gib(256, "blocks", 32, model) == 1.0
    with pytest.raises(ValueError):
        capacity_blocks(1, "bytes", 32, model)


def test_capacity_unit_is_validated():
    with pytest.raises(ConfigError, match="sweep.capacity_unit"):
        compose_config(["sweep.capacity_unit=pages"])
    with pytest.raises(ConfigError, match="sweep.capacities"):
        compose_config(["sweep.capacities=[0.5]"])  # blocks must be whole
    cfg = compose_config(["sweep.capacity_unit=gib", "sweep.capacities=[0.5,2]"])
    assert list(cfg.sweep.capacities) == [0.5, 2]


def _toy_model(**moe) -> ModelProfile:
    return ModelProfile(name="toy", num_layers=2, hidden_size=32, num_attention_heads=4, num_kv_heads=2,
                        head_dim=8, num_params=10**9, kv_dtype_bytes=2, vocab_size=1000, source="test", **moe)


def _toy_hardware() -> HardwareProfile:
    return HardwareProfile(name="toy", peak_bf16_flops=1e12, mem_bandwidth_bytes_s=1e11, memory_bytes=1e10,
                           host_link_bytes_s=1e10, source="test", interconnect_bytes_s=1e10,
                           allreduce_latency_s=1e-5)


def _toy_cost_model(num_gpus: int = 1, prefill_overhead_s: float = 0.0, gemm_half_tokens: float = 0.0,
                    **moe) -> CostModel:
    """Flat roofline (no prefill overhead, no GEMM ramp) unless asked."""
    return CostModel(_toy_model(**moe), _toy_hardware(), precision="bf16", num_gpus=num_gpus,
                     compute_efficiency=0.5, memory_efficiency=0.5, step_overhead_s=0.001,
                     prefill_overhead_s=prefill_overhead_s, gemm_half_tokens=gemm_half_tokens)


#: The toy's parameters: 1e9 in all; the embedding table (1000 x 32) is a
#: lookup; the untied LM head (1000 x 32) runs once per prefill chunk / decode
#: token; the decoder layers (body) hold the rest.
TOY_HEAD = 1000 * 32
TOY_BODY = 10**9 - 2 * TOY_HEAD


def test_cost_model_hand_computed_example():
    """The memory work's example; changed only by the stated terms: linear
    FLOPs count the decoder layers for every token and the LM head for the
    last one (was 2 x num_params per token), and the embedding table is not
    read (weights 2 x (num_params - 32,000) bytes, was 2 x num_params)."""
    cm = _toy_cost_model()
    assert cm.model.kv_bytes_per_token() == 2 * 2 * 2 * 8 * 2  # 128, unchanged
    # Prefill 100 tokens, 40 cached: 60 new tokens at positions 40..99.
    # linear 2 * body * 60 + 2 * head (was 2e9 * 60 = 1.2e11: -7,616,000);
    # attention 2*L*H*(d_qk + d_v) = 2*2*4*16 = 256 per pair, x (100*101 - 40*41)/2 = 4230 pairs (unchanged).
    linear = 2 * TOY_BODY * 60 + 2 * TOY_HEAD
    assert linear == 1.2e11 - 7_616_000
    flops = linear + 256 * 4230
    assert cm.prefill_flops(100, 40) == flops
    weights = 2 * (TOY_BODY + TOY_HEAD)
    assert cm.weight_bytes() == 2e9 - 64_000
    # compute-bound: flops / (1e12 * 0.5) > bytes (weights + 100*128 KV) / (1e11 * 0.5)
    assert cm.prefill_time_s(100, 40) == pytest.approx(flops / 5e11, rel=1e-12)
    assert cm.ttft_s(100, 40) == pytest.approx(0.001 + flops / 5e11, rel=1e-12)
    # Decode 4 requests over 1000 context tokens: memory-bound.
    assert cm.decode_step_time_s(4, 1000) == pytest.approx((weights + 128_000) / 5e10, rel=1e-12)
    # One step with both: weights read once.
    step_flops = flops + 4 * (2 * TOY_BODY + 2 * TOY_HEAD) + 256 * 1000
    step_bytes = weights + 100 * 128 + 1000 * 128
    expected = 0.001 + max(step_flops / 5e11, step_bytes / 5e10)
    assert cm.step_time_s([(60, 40)], [250, 250, 250, 250]) == pytest.approx(expected, rel=1e-12)
    assert cm.step_time_s([], []) == 0.001
    # TPOT at batch 4, 250 context each = that decode step plus the step overhead.
    assert cm.tpot_s(250, 4) == pytest.approx(0.001 + (weights + 128_000) / 5e10, rel=1e-12)


def test_tensor_parallel_4_by_hand():
    """TP4: FLOP/s and bandwidth x4, plus two all-reduces per layer of T x 32
    bf16 activations: ring 2 (N-1)/N x bytes / 1e10 B/s + 10 us latency each."""
    cm = _toy_cost_model(num_gpus=4)
    # Prefill 60 new tokens after 40: 2 layers x 2 all-reduces of 60 x 32 x 2 bytes.
    per_reduce = 1e-5 + 2 * 3 / 4 * 60 * 32 * 2 / 1e10
    assert per_reduce == pytest.approx(1.0576e-5, rel=1e-12)
    assert cm.comm_time_s(60) == pytest.approx(4 * per_reduce, rel=1e-12)
    flops = 2 * TOY_BODY * 60 + 2 * TOY_HEAD + 256 * 4230
    weights = 2 * (TOY_BODY + TOY_HEAD)
    compute = flops / (1e12 * 4 * 0.5)                  # 0.06 s
    memory = (weights + 100 * 128) / (1e11 * 4 * 0.5)   # 0.01 s
    assert compute > memory
    assert cm.ttft_s(100, 40) == pytest.approx(0.001 + compute + 4 * per_reduce, rel=1e-12)
    # Decode of 4 requests: memory-bound, all-reduces of 4 tokens.
    comm4 = 4 * (1e-5 + 2 * 3 / 4 * 4 * 32 * 2 / 1e10)
    assert cm.tpot_s(250, 4) == pytest.approx(0.001 + (weights + 1000 * 128) / 2e11 + comm4, rel=1e-12)
    # TP speeds the forward pass up by less than 4x: the all-reduces do not shrink.
    one = _toy_cost_model()
    assert one.prefill_time_s(100, 40) / cm.prefill_time_s(100, 40) < 4


def test_prefill_overhead_and_gemm_ramp_by_hand():
    """A prefill step pays prefill_overhead_s; T tokens reach T / (T + T_half)
    of the compute efficiency (60 new tokens, T_half = 60: half)."""
    cm = _toy_cost_model(prefill_overhead_s=0.002, gemm_half_tokens=60.0)
    flops = 2 * TOY_BODY * 60 + 2 * TOY_HEAD + 256 * 4230
    assert cm.ttft_s(100, 40) == pytest.approx(0.001 + 0.002 + flops / (5e11 * 0.5), rel=1e-12)
    # One decode token runs at 1/61 of the FLOP rate: 0.24 s, above the weight read (0.04 s).
    one = 2 * TOY_BODY + 2 * TOY_HEAD + 256 * 1000
    weights = 2 * (TOY_BODY + TOY_HEAD)
    assert cm.tpot_s(1000) == pytest.approx(0.001 + max(one / (5e11 / 61), (weights + 128_000) / 5e10), rel=1e-12)
    assert cm.compute_time_s(flops) == pytest.approx(flops / 5e11)  # marginal cost: no ramp


def test_moe_weights_follow_the_experts_touched():
    """8 experts, top 2, 1e8 parameters per expert: T tokens touch
    8 (1 - (6/8)^T) experts in expectation; FLOPs stay the activated ones."""
    moe = dict(moe_num_experts=8, moe_top_k=2, moe_expert_params=10**8)
    cm = _toy_cost_model(**moe)
    shared = TOY_BODY - 2 * 10**8
    assert cm.model.expected_experts(1) == pytest.approx(2.0)
    assert cm.model.expected_experts(4) == pytest.approx(8 * (1 - 0.75**4))   # 5.46875
    assert cm.weight_bytes(1) == pytest.approx(2 * (TOY_BODY + TOY_HEAD))      # only the activated
    assert cm.weight_bytes(4) == pytest.approx(2 * (shared + 5.46875e8 + TOY_HEAD))
    assert cm.weight_bytes(10_000) == pytest.approx(2 * (shared + 8e8 + TOY_HEAD))  # every expert
    # Decode of 4 requests over 1000 context tokens: memory-bound on the touched experts.
    assert cm.decode_step_time_s(4, 1000) == pytest.approx((2 * (shared + 5.46875e8 + TOY_HEAD) + 128_000)
                                                           / 5e10, rel=1e-12)
    dense = _toy_cost_model()
    assert cm.prefill_flops(100, 40) == dense.prefill_flops(100, 40)


def test_mla_pv_uses_v_head_dim():
    ds = CostModel.from_config(compose_config(["model=deepseek_v3"]))
    assert ds.model.head_dim == 192 and ds.model.pv_head_dim == 128
    assert ds.attention_flops(1, 0) == 2 * 61 * 128 * (192 + 128)
    # Llama-3.1-8B: the embedding lookup and a once-per-prefill LM head, not 2 x 8.03e9 per token.
    ll = CostModel.from_config(compose_config(["model=llama3_8b"]))
    body = 8_030_261_248 - 2 * 128256 * 4096
    assert ll.linear_flops(2048) == 2 * body * 2048 + 2 * 128256 * 4096
    assert 2 * 8_030_261_248 * 2048 / ll.linear_flops(2048) > 1.14  # the old count: ~15% more


def test_cached_tokens_cut_prefill_time_and_flops():
    cm = CostModel.from_config(compose_config([]))
    assert cm.prefill_flops(2048, 0) > cm.prefill_flops(2048, 1024) > cm.prefill_flops(2048, 2040) > 0
    assert cm.ttft_s(2048, 0) > cm.ttft_s(2048, 1024) > cm.ttft_s(2048, 2040) >= cm.step_overhead_s


def test_fp8_needs_fp8_hardware():
    with pytest.raises(ConfigError, match="cost.precision"):
        compose_config(["hardware=a100_80gb", "cost.precision=fp8"])
    cfg = compose_config(["hardware=h100_sxm", "cost.precision=fp8"])
    # one byte per weight; the embedding table (vocab x hidden) is looked up, not read
    assert CostModel.from_config(cfg).weight_bytes() == cfg.model.num_params - 128256 * 4096


def test_ttft_is_one_prefill_step():
    cm = _toy_cost_model()
    assert cm.ttft_s(100, 40) == pytest.approx(cm.step_time_s([(60, 40)], []), rel=1e-12)
    # The config's model too (prefill overhead, GEMM ramp, TP): TTFT and TPOT are steps.
    for tp in (1, 4):
        cfg = CostModel.from_config(compose_config(["model=llama3_70b", f"cost.num_gpus={tp}"]))
        assert cfg.ttft_s(2048, 512) == pytest.approx(cfg.step_time_s([(1536, 512)], []), rel=1e-12)
        assert cfg.tpot_s(700, 3) == pytest.approx(cfg.step_time_s([], [700, 700, 700]), rel=1e-12)
        assert cfg.decode_time_s(100, 4) == pytest.approx(sum(cfg.step_time_s([], [100 + i]) for i in (1, 2, 3)))


@pytest.mark.parametrize("overrides, key", [
    (["model=mixtral_8x7b", "model.moe_top_k=null"], "model.moe_num_experts"),
    (["model=mixtral_8x7b", "model.moe_top_k=9"], "model.moe_top_k"),
    (["hardware.interconnect=infiniband"], "hardware.interconnect"),
    (["hardware.memory_efficiency=1.5"], "hardware.memory_efficiency"),
    (["cost.compute_efficiency=0"], "cost.compute_efficiency"),
    (["cost.prefill_overhead_s=-1"], "cost.prefill_overhead_s"),
])
def test_bad_cost_keys_are_refused(overrides, key):
    with pytest.raises(ConfigError, match=key):
        compose_config(overrides)


def test_efficiencies_come_from_the_hardware_profile():
    cm = CostModel.from_config(compose_config(["hardware=a100_80gb"]))
    assert cm.compute_efficiency == cm.hardware.compute_efficiency_bf16
    assert cm.memory_efficiency == cm.hardware.memory_efficiency
    fixed = CostModel.from_config(compose_config(["hardware=a100_80gb", "cost.compute_efficiency=0.3"]))
    assert fixed.compute_efficiency == 0.3


# --- what a hit buys, capacity columns, equal memory -----------------------

def _toy_trace() -> "pl.DataFrame":
    import polars as pl

    # Two 100-token prompts at 32-token blocks: 3 looked-up blocks each; the
    # second shares its first two blocks with the first.
    rows = []
    for rid, hashes in (("r0", [1, 2, 3]), ("r1", [1, 2, 4])):
        for pos, h in enumerate(hashes):
            rows.append({"request_id": rid, "workload": "w", "time_s": 0.0, "position": pos,
                         "block_hash": h, "lookup": True, "partial_tail": True})
    from prefix_study.traces.block_ids import with_block_ids

    return with_block_ids(pl.DataFrame(rows, schema_overrides={"position": pl.Int32, "block_hash": pl.UInt64}))


def test_savings_of_a_hand_made_trace():
    import numpy as np
    import polars as pl

    from prefix_study.savings.requests import trace_savings_rows

    cm = _toy_cost_model()
    prompts = pl.DataFrame({"workload": ["w", "w"], "request_id": ["r0", "r1"], "prompt_tokens": [100, 100]})
    big, none = trace_savings_rows(_toy_trace(), 32, ["lru"], [64, 0], prompts, cm)
    assert (big["cached_tokens"], big["prompt_tokens"], big["requests"]) == (64, 200, 2)
    assert big["token_hit_rate"] == 0.32
    full = 2 * cm.prefill_flops(100, 0)
    assert big["prefill_flops"] == pytest.approx(full)
    assert big["prefill_flops_saved"] == pytest.approx(cm.prefill_flops(100, 0) - cm.prefill_flops(100, 64))
    assert big["ttft_p50_cache_s"] == pytest.approx(np.percentile([cm.ttft_s(100, 0), cm.ttft_s(100, 64)], 50))
    assert big["ttft_p99_no_cache_s"] == pytest.approx(cm.ttft_s(100, 0))
    assert none["cached_tokens"] == 0 and none["prefill_flops_saved"] == 0


def test_replay_table_has_capacity_in_tokens_and_gib(tmp_path):
    from types import SimpleNamespace

    from prefix_study.io import write_parquet
    from prefix_study.replay.sweep import hit_rate_table

    path = write_parquet(_toy_trace(), tmp_path / "b32.parquet")
    model = _profile("llama3_8b")
    sweep = SimpleNamespace(policies=["lru"], semantics=["prefix"], capacities=[64, 128, 100],
                            capacity_unit="tokens")
    table = hit_rate_table({("w", 32): path}, sweep, model)
    assert table["capacity_blocks"].to_list() == [2, 3, 4]
    assert table["capacity_tokens"].to_list() == [64, 96, 128]
    assert table["capacity_gib"].to_list() == pytest.approx([t * 131072 / GIB for t in (64, 96, 128)])
    blocks = hit_rate_table({("w", 32): path}, SimpleNamespace(policies=["lru"], semantics=["prefix"],
                                                               capacities=[2, 4]), None)
    assert "capacity_gib" not in blocks.columns and blocks["capacity_blocks"].to_list() == [2, 4]


def test_equal_memory_table_matches_token_capacities():
    import polars as pl

    from prefix_study.cost.capacity import with_capacity_columns
    from prefix_study.savings.equal_memory import equal_memory_table, matched_token_capacities

    # 16-token blocks: 1024..8192 tokens; 32-token blocks: 512..4096 tokens.
    rows = [("w", 16, 64, 0.5), ("w", 16, 128, 0.6), ("w", 16, 256, 0.7), ("w", 16, 512, 0.8),
            ("w", 32, 16, 0.3), ("w", 32, 32, 0.4), ("w", 32, 64, 0.55), ("w", 32, 128, 0.65)]
    hits = pl.DataFrame(rows, schema=["workload", "block_size", "capacity_blocks", "hit_rate"], orient="row") \
        .with_columns(pl.lit("prefix").alias("semantics"), pl.lit("lru").alias("policy"))
    hits = with_capacity_columns(hits, _profile("llama3_8b"))
    assert matched_token_capacities(hits) == [1024, 2048, 4096]
    table = equal_memory_table(hits)
    assert table["capacity_tokens"].to_list() == [1024, 2048, 4096]
    assert table["b16"].to_list() == [0.5, 0.6, 0.7] and table["b32"].to_list() == [0.4, 0.55, 0.65]
    assert table["spread"].to_list() == pytest.approx([0.1, 0.05, 0.05])
    assert table["capacity_gib"].to_list() == pytest.approx([0.125, 0.25, 0.5])
