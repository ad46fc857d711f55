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
                                  "mistral_7b", "llama2_7b", "llama2_70b"])
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


def _toy_cost_model() -> CostModel:
    model = ModelProfile(name="toy", num_layers=2, hidden_size=32, num_attention_heads=4, num_kv_heads=2,
                         head_dim=8, num_params=10**9, kv_dtype_bytes=2, source="test")
    hw = HardwareProfile(name="toy", peak_bf16_flops=1e12, mem_bandwidth_bytes_s=1e11, memory_bytes=1e10,
                         host_link_bytes_s=1e10, source="test")
    return CostModel(model, hw, precision="bf16", num_gpus=1, compute_efficiency=0.5,
                     memory_efficiency=0.5, step_overhead_s=0.001)


def test_cost_model_hand_computed_example():
    cm = _toy_cost_model()
    assert cm.model.kv_bytes_per_token() == 2 * 2 * 2 * 8 * 2  # 128
    # Prefill 100 tokens, 40 cached: 60 new tokens at positions 40..99.
    # linear 2e9 * 60 = 1.2e11; attention 4*2*4*8 * (100*101 - 40*41)/2 = 256 * 4230.
    flops = 1.2e11 + 256 * 4230
    assert cm.prefill_flops(100, 40) == flops
    # compute-bound: flops / (1e12 * 0.5) > bytes (2e9 weights + 100*128 KV) / (1e11 * 0.5)
    assert cm.prefill_time_s(100, 40) == pytest.approx(flops / 5e11, rel=1e-12)
    assert cm.ttft_s(100, 40) == pytest.approx(0.001 + flops / 5e11, rel=1e-12)
    # Decode 4 requests over 1000 context tokens: memory-bound.
    # flops 2e9*4 + 256*1000 -> 0.0160005 s; bytes 2e9 + 1000*128 -> 0.04000256 s
    assert cm.decode_step_time_s(4, 1000) == pytest.approx((2e9 + 128_000) / 5e10, rel=1e-12)
    # One step with both: weights read once.
    step_flops = 1.2e11 + 256 * 4230 + 8e9 + 256 * 1000
    step_bytes = 2e9 + 100 * 128 + 1000 * 128
    expected = 0.001 + max(step_flops / 5e11, step_bytes / 5e10)
    assert cm.step_time_s([(60, 40)], [250, 250, 250, 250]) == pytest.approx(expected, rel=1e-12)
    assert cm.step_time_s([], []) == 0.001


def test_cached_tokens_cut_prefill_time_and_flops():
    cm = CostModel.from_config(compose_config([]))
    assert cm.prefill_flops(2048, 0) > cm.prefill_flops(2048, 1024) > cm.prefill_flops(2048, 2040) > 0
    assert cm.ttft_s(2048, 0) > cm.ttft_s(2048, 1024) > cm.ttft_s(2048, 2040) >= cm.step_overhead_s


def test_fp8_needs_fp8_hardware():
    with pytest.raises(ConfigError, match="cost.precision"):
        compose_config(["hardware=a100_80gb", "cost.precision=fp8"])
    cfg = compose_config(["hardware=h100_sxm", "cost.precision=fp8"])
    assert CostModel.from_config(cfg).weight_bytes() == cfg.model.num_params


def test_ttft_is_one_prefill_step():
    cm = _toy_cost_model()
    assert cm.ttft_s(100, 40) == pytest.approx(cm.step_time_s([(60, 40)], []), rel=1e-12)


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
