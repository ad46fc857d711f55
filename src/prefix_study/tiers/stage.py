"""Tiers stage (rule `tiers`): every workload, the mix and every imported trace
through GPU memory and the tiers below it (tier_replay), and the break-even
bandwidth table.

It runs only when `tiers` has a tier below GPU memory (`has_lower_tiers`):
under `gpu_only` the tier replay is today's prefix replay, which the replay
and savings stages already wrote, so the DAG has no tiers job then.

Per trace, one replay at the preset (`point` = `preset`), one per capacity of
the swept tier (`tiers.study.capacities`, figure `tier_tokens`) and one per
read bandwidth of it (`tiers.study.read_bytes_s`, figure `tier_ttft`). All use
one specialisation of the tier loop (the policies do not change), so the
stage compiles (or loads from numba's cache) one kernel per block size type.
TTFT of a request = the cost model's `ttft_s(prompt, tokens served from any
tier)` + its load time (latency + bytes / read bandwidth per tier, no
overlap with compute): no queueing, as in the savings stage.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import polars as pl

from prefix_study.config.schema import TierLink
from prefix_study.cost.capacity import capacity_blocks, capacity_gib
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import HardwareProfile, ModelProfile
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.kernels._common import REQUEST_START
from prefix_study.replay.trace import REPLAY_COLUMNS, BlockTrace, encode_trace, read_trace
from prefix_study.tiers.profiles import named_profiles
from prefix_study.tiers.break_even import break_even_bytes_s, recompute_s
from prefix_study.tiers.replay import TierReplay, tier_replay
from prefix_study.tiers.spec import Hierarchy, TierSpec, hierarchy

#: The interleaved mix of the ShareGPT workloads (as the mixed stage builds it).
MIXED = "mixed"
PERCENTILES = (50, 90, 99)
LINKS = tuple(link.value for link in TierLink)


def tier_columns(i: int) -> dict[str, Any]:
    return {f"tier{i}": pl.String, f"tier{i}_tokens": pl.Int64, f"tier{i}_read_bytes": pl.Float64,
            f"tier{i}_write_bytes": pl.Float64, f"tier{i}_write_amplification": pl.Float64}


TIERS_SCHEMA = {
    "workload": pl.String, "block_size": pl.Int64, "point": pl.String, "swept_tier": pl.String,
    "swept_capacity": pl.Float64, "swept_capacity_gib": pl.Float64, "swept_read_bytes_s": pl.Float64,
    "load_policy": pl.String, "gpu_policy": pl.String, "gpu_capacity_blocks": pl.Int64,
    "gpu_capacity_gib": pl.Float64, "requests": pl.Int64, "prompt_tokens": pl.Int64, "lookup_tokens": pl.Int64,
    "gpu_tokens": pl.Int64, **tier_columns(1), **tier_columns(2), "recomputed_tokens": pl.Int64,
    "declined_tokens": pl.Int64, **{f"{link}_bytes": pl.Float64 for link in LINKS},
    "load_s_mean": pl.Float64,
    **{f"ttft_p{q}_s": pl.Float64 for q in PERCENTILES},
    **{f"ttft_gpu_only_p{q}_s": pl.Float64 for q in PERCENTILES},
    **{f"ttft_no_cache_p{q}_s": pl.Float64 for q in PERCENTILES},
    "swept_loaded_tokens_p50": pl.Float64, "break_even_bytes_s": pl.Float64,
}

BREAK_EVEN_SCHEMA = {
    "model": pl.String, "hardware": pl.String, "num_gpus": pl.Int64, "block_size": pl.Int64,
    "prefix_tokens": pl.Int64, "kv_bytes": pl.Float64, "recompute_s": pl.Float64, "tier": pl.String,
    "latency_s": pl.Float64, "tier_read_bytes_s": pl.Float64, "load_s": pl.Float64,
    "break_even_bytes_s": pl.Float64, "loading_wins": pl.Boolean,
}


def gpu_memory(cfg: Any, tiers: Hierarchy, model: ModelProfile) -> tuple[str, int]:
    """GPU memory's policy and capacity in blocks: tiers.tiers[0]'s, else tiers.study's."""
    study = cfg.tiers.study
    policy = tiers.gpu_policy or str(study.gpu_policy)
    if tiers.gpu_capacity_blocks is not None:
        return policy, int(tiers.gpu_capacity_blocks)
    return policy, int(capacity_blocks(float(study.gpu_capacity), str(study.gpu_capacity_unit),
                                       tiers.block_size, model))


def prompt_tokens(streams: Mapping[str, Path | str]) -> pl.DataFrame:
    """(workload, request_id, prompt_tokens) of the ShareGPT workloads' streams."""
    frames = [pl.read_parquet(p, columns=["workload", "request_id", "prompt_token_ids"])
              .select("workload", "request_id",
                      pl.col("prompt_token_ids").list.len().cast(pl.Int64).alias("prompt_tokens"))
              for p in streams.values()]
    if not frames:
        return pl.DataFrame(schema={"workload": pl.String, "request_id": pl.String, "prompt_tokens": pl.Int64})
    return pl.concat(frames)


def request_prompts(frame: pl.DataFrame, trace: BlockTrace, prompts: pl.DataFrame, block_size: int) -> np.ndarray:
    """Prompt tokens per request in trace order: the stream's, else (imported
    traces) the looked-up blocks plus one token (as the savings stage prices them)."""
    starts = np.flatnonzero(trace.flags & REQUEST_START)
    heads = frame.select("workload", "request_id")[starts.tolist()]
    joined = heads.with_row_index("_i").join(prompts, on=["workload", "request_id"], how="left").sort("_i")
    lookups = np.add.reduceat(trace.looked_up.astype(np.int64), starts) if starts.size else np.zeros(0, np.int64)
    fallback = lookups * block_size + 1
    col = joined["prompt_tokens"]
    return np.where(col.is_null().to_numpy(), fallback, col.fill_null(0).to_numpy()).astype(np.int64)


def _percentiles(values: np.ndarray, prefix: str) -> dict[str, float | None]:
    return {f"{prefix}_p{q}_s": float(np.percentile(values, q)) if values.size else None for q in PERCENTILES}


def summarize(res: TierReplay, prompt: np.ndarray, cost: CostModel, swept: int) -> dict[str, Any]:
    """One row's measures of a tier replay: tokens per tier, bytes, TTFT."""
    h = res.hierarchy
    bs = h.block_size
    served = res.served_blocks
    row: dict[str, Any] = {
        "requests": int(served.shape[0]), "prompt_tokens": int(prompt.sum()),
        "lookup_tokens": int(served.sum() + res.recomputed_blocks.sum()) * bs,
        "gpu_tokens": int(served[:, 0].sum()) * bs,
        "recomputed_tokens": res.recomputed_tokens(), "declined_tokens": int(res.declined_blocks.sum()) * bs,
        "load_s_mean": float(res.load_s.mean()) if res.load_s.size else 0.0,
    }
    for i in (1, 2):
        if i < served.shape[1]:
            read, written = float(res.read_bytes[:, i].sum()), float(res.write_bytes[:, i].sum())
            row |= {f"tier{i}": h.lower[i - 1].name, f"tier{i}_tokens": int(served[:, i].sum()) * bs,
                    f"tier{i}_read_bytes": read, f"tier{i}_write_bytes": written,
                    f"tier{i}_write_amplification": written / read if read > 0 else None}
    for link in LINKS:
        row[f"{link}_bytes"] = float(res.link_bytes[link].sum()) if link in res.link_bytes else 0.0
    cached = np.minimum(served.sum(axis=1) * bs, np.maximum(prompt - 1, 0))
    gpu = np.minimum(served[:, 0] * bs, np.maximum(prompt - 1, 0))
    row |= _percentiles(cost.ttft_s(prompt, cached) + res.load_s, "ttft")
    row |= _percentiles(np.asarray(cost.ttft_s(prompt, gpu), dtype=np.float64), "ttft_gpu_only")
    row |= _percentiles(np.asarray(cost.ttft_s(prompt, 0), dtype=np.float64), "ttft_no_cache")
    loaded = served[:, swept] * bs
    loaded = loaded[loaded > 0]
    spec = h.lower[swept - 1]
    if loaded.size:
        p50 = float(np.percentile(loaded, 50))
        row["swept_loaded_tokens_p50"] = p50
        row["break_even_bytes_s"] = break_even_bytes_s(cost, int(p50), bs, spec.latency_s)
    return row


def study_points(cfg: Any, tiers: Hierarchy, model: ModelProfile) -> Iterator[tuple[str, Hierarchy, float]]:
    """(point, hierarchy, swept capacity in its unit): the preset, then each
    capacity of the swept tier, then each of its read bandwidths."""
    study = cfg.tiers.study
    t = int(study.tier)
    node = cfg.tiers.tiers[t]
    unit = str(node.capacity_unit)
    preset_cap = math.inf if node.capacity is None else float(node.capacity)

    def with_tier(**kw: Any) -> Hierarchy:
        lower = list(tiers.lower)
        lower[t - 1] = replace(lower[t - 1], **kw)
        return replace(tiers, lower=tuple(lower))

    yield "preset", tiers, preset_cap
    for c in study.capacities:
        yield "capacity", with_tier(capacity_blocks=capacity_blocks(float(c), unit, tiers.block_size, model)), float(c)
    for bw in study.read_bytes_s:
        yield "read_bytes_s", with_tier(read_bytes_s=float(bw)), preset_cap


def traces_of(cfg: Any, traces: Mapping[str, Path | str], external: Mapping[str, Path | str]
              ) -> Iterator[tuple[str, int, pl.DataFrame]]:
    """(name, block size, trace frame): each trace at mix.block_size (the
    mixed stage's), their interleaved mix (mix.pattern, mix.burst) when there
    are several, and each imported trace at another block size."""
    from prefix_study.mixed.interleave import interleave_traces
    from prefix_study.traces.formats import external_block_tokens

    bs = int(cfg.mix.block_size)
    frames = {w: read_trace(p, (*REPLAY_COLUMNS, "time_s")) for w, p in traces.items()}
    for w, f in frames.items():
        yield w, bs, f.with_columns(pl.lit(w).alias("workload"))
    if len(frames) > 1:
        yield MIXED, bs, interleave_traces(frames, str(cfg.mix.pattern), int(cfg.mix.burst))
    for w, p in external.items():
        yield w, int(external_block_tokens(cfg.workloads[w])), read_trace(p, REPLAY_COLUMNS) \
            .with_columns(pl.lit(w).alias("workload"))


def tiers_table(cfg: Any, traces: Mapping[str, Path | str], external: Mapping[str, Path | str],
                streams: Mapping[str, Path | str], progress: bool = False) -> pl.DataFrame:
    cost = CostModel.from_config(cfg)
    model, hardware = cost.model, cost.hardware
    prompts = prompt_tokens(streams)
    swept = int(cfg.tiers.study.tier)
    rows = []
    for name, bs, frame in traces_of(cfg, traces, external):
        trace = encode_trace(frame)
        h = hierarchy(cfg.tiers, hardware, model, bs)
        policy, gpu_blocks = gpu_memory(cfg, h, model)
        prompt = request_prompts(frame, trace, prompts, bs)
        unit = str(cfg.tiers.tiers[swept].capacity_unit)
        for point, hp, cap in study_points(cfg, h, model):
            res = tier_replay(trace, hp, policy, gpu_blocks, cost)
            spec: TierSpec = hp.lower[swept - 1]
            rows.append({
                "workload": name, "block_size": bs, "point": point, "swept_tier": spec.name,
                "swept_capacity": cap if math.isfinite(cap) else None,
                "swept_capacity_gib": capacity_gib(cap, unit, bs, model) if math.isfinite(cap) else None,
                "swept_read_bytes_s": spec.read_bytes_s, "load_policy": hp.load_policy, "gpu_policy": policy,
                "gpu_capacity_blocks": gpu_blocks, "gpu_capacity_gib": gpu_blocks * model.kv_bytes_per_block(bs) / 2**30,
                **summarize(res, prompt, cost, swept)})
            if progress:
                print(f"tiers: {name} {point} {cap} {spec.read_bytes_s:.3g} B/s", flush=True)
    return pl.DataFrame(rows, schema=TIERS_SCHEMA)


def break_even_table(cfg: Any) -> pl.DataFrame:
    """Per model x GPU x prefix length x tier below GPU memory: recompute
    time, load time over the tier's links on that GPU's profile, and the read
    bandwidth at which they tie (break_even.py)."""
    study = cfg.tiers.study
    base = CostModel.from_config(cfg)
    bs = int(cfg.mix.block_size)
    rows = []
    for m in named_profiles("model", list(study.break_even_models), cfg.model):
        model = ModelProfile.from_config(m)
        for hw in named_profiles("hardware", list(study.break_even_hardware), cfg.hardware):
            hardware = HardwareProfile.from_config(hw)
            cost = replace(base, model=model, hardware=hardware)
            h = hierarchy(cfg.tiers, hardware, model, bs)
            for p in study.prefix_tokens:
                p = int(p)
                rec = recompute_s(cost, p, bs)
                kv = float(p * model.kv_bytes_per_token())
                for t in h.lower:
                    load = t.latency_s + kv / t.read_bytes_s
                    rows.append({"model": model.name, "hardware": hardware.name, "num_gpus": cost.num_gpus,
                                 "block_size": bs, "prefix_tokens": p, "kv_bytes": kv, "recompute_s": rec,
                                 "tier": t.name, "latency_s": t.latency_s, "tier_read_bytes_s": t.read_bytes_s,
                                 "load_s": load, "break_even_bytes_s": break_even_bytes_s(cost, p, bs, t.latency_s),
                                 "loading_wins": bool(load < rec)})
    return pl.DataFrame(rows, schema=BREAK_EVEN_SCHEMA)


def tiers_markdown(cfg: Any, table: pl.DataFrame) -> str:
    t = cfg.tiers
    preset = table.filter(pl.col("point") == "preset")
    cols = ["workload", "block_size", "gpu_capacity_gib", "gpu_tokens", "tier1", "tier1_tokens", "tier2",
            "tier2_tokens", "recomputed_tokens", "declined_tokens", "tier1_write_amplification",
            "ttft_p90_s", "ttft_gpu_only_p90_s", "ttft_no_cache_p90_s"]
    sweep_cols = ["workload", "swept_tier", "swept_capacity_gib", "read_gb_s", "gpu_tokens", "tier1_tokens",
                  "tier2_tokens", "recomputed_tokens", "ttft_p90_s", "ttft_gpu_only_p90_s", "break_even_gb_s"]
    gb = table.with_columns((pl.col("swept_read_bytes_s") / 1e9).alias("read_gb_s"),
                            (pl.col("break_even_bytes_s") / 1e9).alias("break_even_gb_s"))
    cap = gb.filter(pl.col("point") == "capacity")
    bw = gb.filter(pl.col("point") == "read_bytes_s")
    return (f"# KV tiers: preset `{t.name}` (load_policy {t.load_policy})\n\nSource: {t.source}\n\n"
            "Tokens each tier served (GPU memory: its prefix hits; below: loaded), recomputed, found below but "
            "not loaded (declined, load policy); write amplification: bytes written to the tier / bytes loaded "
            "from it. TTFT (s): the cost model's prefill of the uncached tokens plus load time, no queueing; "
            "`gpu_only`: the same GPU memory without tiers below; `no_cache`: every token computed.\n\n"
            + markdown_table(preset.select([c for c in cols if c in preset.columns]), float_digits=4)
            + "\n## Capacity of the swept tier\n\n" + markdown_table(cap.select(sweep_cols), float_digits=4)
            + "\n## Read bandwidth of the swept tier\n\n" + markdown_table(bw.select(sweep_cols), float_digits=4))


def break_even_markdown(table: pl.DataFrame) -> str:
    wide = table.filter(pl.col("tier") == table["tier"][0]) if table.height else table
    pivot = wide.with_columns((pl.col("break_even_bytes_s") / 1e9).alias("gb_s")).pivot(
        on="prefix_tokens", index=["model", "hardware"], values="gb_s") if wide.height else wide
    return ("# Break-even read bandwidth (GB/s) at which loading a cached prefix ties with recomputing it\n\n"
            "Recompute: the blocks' marginal prefill compute time (cost model); load: the tier's latency + "
            "KV bytes / bandwidth. Below the break-even bandwidth, recomputing is faster. "
            f"Columns: prefix tokens; latency of tier `{wide['tier'][0] if wide.height else ''}`.\n\n"
            + markdown_table(pivot, float_digits=3)
            + "\n## Every tier of the preset on each GPU's links\n\n"
            + markdown_table(table.select("model", "hardware", "prefix_tokens", "tier", "recompute_s", "load_s",
                                          (pl.col("break_even_bytes_s") / 1e9).alias("break_even_gb_s"),
                                          (pl.col("tier_read_bytes_s") / 1e9).alias("tier_read_gb_s"),
                                          "loading_wins"), float_digits=4))


def run(cfg: Any, traces: Mapping[str, Path | str], external: Mapping[str, Path | str],
        streams: Mapping[str, Path | str], out_dir: Path | str, progress: bool = False) -> pl.DataFrame:
    """Write tiers.{parquet,md} and break_even.{parquet,md} under out_dir.

    traces: {ShareGPT workload: trace at mix.block_size}, in mixing order;
    external: {imported trace workload: its trace}; streams: {ShareGPT
    workload: request stream} (prompt lengths)."""
    out = Path(out_dir)
    table = tiers_table(cfg, traces, external, streams, progress)
    write_parquet(table, out / "tiers.parquet")
    write_text(tiers_markdown(cfg, table), out / "tiers.md")
    be = break_even_table(cfg)
    write_parquet(be, out / "break_even.parquet")
    write_text(break_even_markdown(be), out / "break_even.md")
    return table
