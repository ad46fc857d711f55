"""Baseline policies vs workload-aware LRU (WA-LRU) on the mixed workload.

WA-LRU admits only blocks of cache-friendly workloads. Under `block`
semantics the others bypass the cache: they always miss and never insert or
evict anything, so WA-LRU equals LRU replayed over the cache-friendly
workloads' requests alone (still interleaved), with every other access a miss.
Under `prefix` semantics WA-LRU is what the in-engine policy does
(engine.eviction=wa_lru, engine/eviction.py): a request of a workload that is
not admitted still looks up the cache (it may hit admitted blocks) and holds
blocks while it runs (evicting queued ones when no slot is free), but the
blocks it computed are dropped when it finishes (vLLM's free queue with the
BYPASS flag, kernels/lru.py). The cache-friendly set is, in order of precedence:
`mix.cache_friendly` if non-empty; else each workload's own `cache_friendly`
flag where set; else automatic: the workload's single-workload LRU hit rate at
the same capacity and semantics is >= `mix.friendly_threshold`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl

from prefix_study.cost.capacity import with_capacity_columns
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.mixed.interleave import interleave_traces
from prefix_study.replay.per_request import labelled_per_request
from prefix_study.replay.simulate import SEMANTICS, replay, replay_hit_mask
from prefix_study.replay.sweep import PER_REQUEST_SEMANTICS, per_request_table
from prefix_study.replay.kernels._common import BYPASS, REQUEST_START
from prefix_study.replay.trace import REPLAY_COLUMNS, BlockTrace, encode_trace, read_trace

WA_POLICY = "wa_lru"
ALL = "all"

MIXED_SCHEMA = {
    "block_size": pl.Int64,
    "semantics": pl.String,
    "policy": pl.String,
    "workload": pl.String,
    "capacity_blocks": pl.Int64,
    "accesses": pl.Int64,
    "hits": pl.Int64,
    "hit_rate": pl.Float64,
    "cache_friendly": pl.Boolean,
    "single_hit_rate": pl.Float64,
    "friendly_workloads": pl.String,
}


def choose_cache_friendly(
    single_hit_rates: Mapping[str, float],
    listed: Iterable[str] = (),
    flags: Mapping[str, bool | None] | None = None,
    threshold: float = 0.2,
) -> list[str]:
    """Cache-friendly workloads (sorted), by the precedence in the module doc."""
    listed = list(listed)
    if listed:
        unknown = sorted(set(listed) - set(single_hit_rates))
        if unknown:
            raise ValueError(f"mix.cache_friendly names unknown workloads {unknown}; known: {sorted(single_hit_rates)}")
        return sorted(set(listed))
    flags = flags or {}
    out = []
    for w, rate in single_hit_rates.items():
        flag = flags.get(w)
        if (flag is None and rate >= threshold) or flag is True:
            out.append(w)
    return sorted(out)


def wa_lru_hit_mask(trace: BlockTrace, friendly: Iterable[str], capacity: int, semantics: str) -> np.ndarray:
    """Per-access hits of WA-LRU admitting only the workloads in `friendly`
    (the two semantics as in the module doc)."""
    codes = [trace.workload_names.index(w) for w in friendly if w in trace.workload_names]
    keep = np.isin(trace.workload, codes)
    if semantics == "prefix":
        starts = (trace.flags & REQUEST_START) != 0
        flags = trace.flags | np.where(starts & ~keep, BYPASS, np.uint8(0)).astype(np.uint8)
        bypassing = BlockTrace(ids=trace.ids, flags=flags, num_ids=trace.num_ids,
                               workload_codes=(trace.workload, trace.workload_names))
        return replay_hit_mask(bypassing, "lru", capacity, semantics)
    hits = np.zeros(trace.accesses, dtype=np.bool_)
    if keep.any():
        hits[keep] = replay_hit_mask(trace.select(keep), "lru", capacity, semantics)
    return hits


def _per_workload(trace: BlockTrace, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(accesses, hits) per workload code, counting looked-up accesses."""
    k = len(trace.workload_names)
    looked = trace.looked_up
    acc = np.bincount(trace.workload, weights=looked, minlength=k).astype(np.int64)
    hit = np.bincount(trace.workload, weights=hits & looked, minlength=k).astype(np.int64)
    return acc, hit


def mixed_hit_rate_table(
    frames: Mapping[str, pl.DataFrame],
    mix_cfg: Any,
    workload_cfgs: Mapping[str, Any] | None = None,
    cost_model: CostModel | None = None,
    per_request: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Replay the interleaved workloads with each baseline and WA-LRU.

    frames: {workload: trace frame at mix.block_size}, in mixing order;
    cost_model: recompute costs of cost-aware baselines (cost_lru;
    replay/simulate.py's recompute_cost), else the position-linear stand-in.
    per_request: a list to which the per-request hits of every `prefix`
    replay are appended (replay.sweep.PER_REQUEST_SCHEMA, interleaved order).
    """
    semantics = [str(s) for s in getattr(mix_cfg, "semantics", SEMANTICS)]
    for s in semantics:
        if s not in SEMANTICS:
            raise ValueError(f"mix.semantics: {s!r} not in {list(SEMANTICS)}")
    mixed_frame = interleave_traces(frames, str(mix_cfg.pattern), int(mix_cfg.burst))
    mixed = encode_trace(mixed_frame)
    names = list(mixed.workload_names)
    block_size = int(mix_cfg.block_size)
    singles = {w: encode_trace(frames[w].with_columns(pl.lit(w).alias("workload"))) for w in names}
    flags = {w: getattr(workload_cfgs[w], "cache_friendly", None) for w in names if workload_cfgs and w in workload_cfgs}
    rows: list[dict[str, Any]] = []

    def emit(sem: str, policy: str, cap: int, acc: np.ndarray, hit: np.ndarray,
             friendly: list[str], single: Mapping[str, float]) -> None:
        label = ",".join(friendly)
        for i, w in enumerate(names):
            rows.append({
                "block_size": block_size, "semantics": sem, "policy": policy, "workload": w, "capacity_blocks": cap,
                "accesses": int(acc[i]), "hits": int(hit[i]),
                "hit_rate": float(hit[i] / acc[i]) if acc[i] else 0.0,
                "cache_friendly": w in friendly, "single_hit_rate": single[w],
                "friendly_workloads": label,
            })
        a, h = int(acc.sum()), int(hit.sum())
        rows.append({
            "block_size": block_size, "semantics": sem, "policy": policy, "workload": ALL, "capacity_blocks": cap,
            "accesses": a, "hits": h, "hit_rate": h / a if a else 0.0,
            "cache_friendly": None, "single_hit_rate": None, "friendly_workloads": label,
        })

    def keep(sem: str, policy: str, cap: int, hits: np.ndarray) -> np.ndarray:
        if per_request is not None and sem == PER_REQUEST_SEMANTICS:
            per_request.append(labelled_per_request(mixed_frame, mixed, hits, block_size, policy, sem, cap))
        return hits

    for sem in semantics:
        for cap in sorted(int(c) for c in mix_cfg.capacities):
            single = {w: replay(singles[w], "lru", cap, sem).hit_rate for w in names}
            friendly = choose_cache_friendly(single, list(mix_cfg.cache_friendly), flags,
                                             float(mix_cfg.friendly_threshold))
            for policy in mix_cfg.baselines:
                hits = keep(sem, policy, cap, replay_hit_mask(mixed, policy, cap, sem, cost_model, block_size))
                acc, hit = _per_workload(mixed, hits)
                emit(sem, policy, cap, acc, hit, friendly, single)
            acc, hit = _per_workload(mixed, keep(sem, WA_POLICY, cap, wa_lru_hit_mask(mixed, friendly, cap, sem)))
            emit(sem, WA_POLICY, cap, acc, hit, friendly, single)
    return pl.DataFrame(rows, schema=MIXED_SCHEMA)


def mixed_markdown(table: pl.DataFrame) -> str:
    wide = table.pivot(
        on="workload", index=["semantics", "capacity_blocks", "policy"], values="hit_rate",
        maintain_order=True,
    )
    friendly = table.select("semantics", "capacity_blocks", "friendly_workloads").unique(
        maintain_order=True
    )
    return (
        "Hit rate per workload (looked-up block accesses) and overall (`all`).\n\n"
        + markdown_table(wide)
        + "\nCache-friendly workloads (admitted by WA-LRU):\n\n"
        + markdown_table(friendly)
    )


def write_mixed_hit_rates(
    trace_paths: Mapping[str, Path | str],
    mix_cfg: Any,
    workload_cfgs: Mapping[str, Any] | None,
    out_parquet: Path | str,
    out_md: Path | str,
    model: ModelProfile | None = None,
    cost_model: CostModel | None = None,
    per_request_out: Path | str | None = None,
) -> pl.DataFrame:
    """Stage entry point: `mixed/hit_rates.parquet` + `.md` (and with
    per_request_out `mixed/per_request.parquet`, the savings stage's input).

    trace_paths: {workload: traces/{workload}/b{mix.block_size}.parquet}, in
    the order workloads take turns; mix_cfg: MixConfig; workload_cfgs:
    {workload: WorkloadConfig} (for the per-workload cache_friendly flags);
    model: adds `capacity_tokens` and `capacity_gib` (KV memory of that model);
    cost_model: recompute costs of cost-aware baselines.
    """
    frames = {w: read_trace(p, (*REPLAY_COLUMNS, "time_s"))
              for w, p in trace_paths.items()}
    per_request: list[pl.DataFrame] | None = [] if per_request_out is not None else None
    table = mixed_hit_rate_table(frames, mix_cfg, workload_cfgs, cost_model, per_request)
    if model is not None:
        table = with_capacity_columns(table, model)
    write_parquet(table, out_parquet)
    write_text("# Mixed workload hit rates\n\n" + mixed_markdown(table), out_md)
    if per_request is not None:
        write_parquet(per_request_table(per_request), per_request_out)
    return table
