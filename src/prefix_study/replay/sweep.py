"""The replay stage: policy x semantics x capacity over every trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl

from prefix_study.cost.capacity import capacity_blocks, with_capacity_columns
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.per_request import labelled_per_request
from prefix_study.replay.simulate import SEMANTICS, replay_hit_mask
from prefix_study.replay.trace import BlockTrace, encode_trace, read_trace

HIT_RATE_SCHEMA = {
    "workload": pl.String,
    "block_size": pl.Int64,
    "policy": pl.String,
    "semantics": pl.String,
    "capacity_blocks": pl.Int64,
    "accesses": pl.Int64,
    "hits": pl.Int64,
    "hit_rate": pl.Float64,
}

#: Semantics whose per-request hits the replay stage writes (vLLM's rule:
#: only these hits skip prefill, so the savings stage prices them).
PER_REQUEST_SEMANTICS = "prefix"

#: replay/per_request.parquet: per trace x policy x capacity, one row per
#: request in trace order (the savings stage's input).
PER_REQUEST_SCHEMA = {
    "workload": pl.String,
    "block_size": pl.Int64,
    "policy": pl.String,
    "semantics": pl.String,
    "capacity_blocks": pl.Int64,
    "request_id": pl.String,
    "lookup_blocks": pl.Int64,
    "hit_blocks": pl.Int64,
}


def hit_rate_rows(
    trace: BlockTrace, workload: str, block_size: int, policies: Iterable[str],
    semantics: Iterable[str], capacities: Iterable[int], cost_model: CostModel | None = None,
    frame: pl.DataFrame | None = None, per_request: list[pl.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """One row per replay; cost_model: recompute costs of cost-aware policies
    (simulate.recompute_cost; None: the position-linear stand-in). With
    `frame` (the trace's rows) and a `per_request` list, also appends the
    per-request hits of every `prefix` replay (PER_REQUEST_SCHEMA), replaying
    `prefix` for them when `semantics` lacks it."""
    semantics = list(semantics)
    extra = [] if per_request is None or PER_REQUEST_SEMANTICS in semantics else [PER_REQUEST_SEMANTICS]
    looked = trace.looked_up
    rows = []
    for policy in policies:
        for sem in semantics + extra:
            for cap in capacities:
                hits = replay_hit_mask(trace, policy, int(cap), sem, cost_model, int(block_size))
                if per_request is not None and sem == PER_REQUEST_SEMANTICS:
                    per_request.append(labelled_per_request(frame, trace, hits, block_size, policy, sem, cap))
                if sem in extra:
                    continue
                accesses, hit = int(np.count_nonzero(looked)), int(np.count_nonzero(hits & looked))
                rows.append({
                    "workload": workload, "block_size": int(block_size), "policy": policy,
                    "semantics": sem, "capacity_blocks": int(cap), "accesses": accesses,
                    "hits": hit, "hit_rate": hit / accesses if accesses else 0.0,
                })
    return rows


def sweep_capacity_blocks(sweep_cfg: Any, block_size: int, model: ModelProfile | None) -> list[int]:
    """The sweep's capacities (in `sweep.capacity_unit`) as whole blocks of `block_size`."""
    unit = str(getattr(sweep_cfg, "capacity_unit", "blocks"))
    if unit != "blocks" and model is None:
        raise ValueError(f"sweep.capacity_unit={unit!r} needs a model profile")
    return sorted({capacity_blocks(c, unit, block_size, model) for c in sweep_cfg.capacities})


def hit_rate_table(trace_paths: Mapping[tuple[str, int], Path | str], sweep_cfg: Any,
                   model: ModelProfile | None = None, cost_model: CostModel | None = None,
                   per_request: list[pl.DataFrame] | None = None) -> pl.DataFrame:
    """All replays of the sweep (sweep_cfg: policies, semantics, capacities,
    capacity_unit). With `model`, the table also has `capacity_tokens` and
    `capacity_gib` (KV memory of that model). cost_model: recompute costs
    of cost-aware policies (cost_lru). per_request: a list to which the
    per-request hits of every prefix replay are appended (hit_rate_rows)."""
    for sem in sweep_cfg.semantics:
        if sem not in SEMANTICS:
            raise ValueError(f"sweep.semantics: {sem!r} not in {list(SEMANTICS)}")
    rows: list[dict[str, Any]] = []
    for (workload, block_size) in sorted(trace_paths):
        frame = read_trace(trace_paths[(workload, block_size)])
        trace = encode_trace(frame)
        rows += hit_rate_rows(trace, workload, block_size, [str(p) for p in sweep_cfg.policies],
                              [str(s) for s in sweep_cfg.semantics], sweep_capacity_blocks(sweep_cfg, block_size, model),
                              cost_model, frame, per_request)
    table = pl.DataFrame(rows, schema=HIT_RATE_SCHEMA).sort(
        "workload", "block_size", "policy", "semantics", "capacity_blocks"
    )
    return table if model is None else with_capacity_columns(table, model)


def per_request_table(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The per-request hits of hit_rate_table's `per_request` list, in replay order."""
    return pl.concat([f.cast(PER_REQUEST_SCHEMA) for f in frames]) if frames else \
        pl.DataFrame(schema=PER_REQUEST_SCHEMA)


#: Column a hit-rate table is laid out by, per sweep.capacity_unit.
UNIT_COLUMNS = {"blocks": "capacity_blocks", "tokens": "capacity_tokens", "gib": "capacity_gib"}


def hit_rate_markdown(table: pl.DataFrame, unit: str = "blocks") -> str:
    """Hit rates with one column per capacity (in `unit`)."""
    if table.height == 0:
        return "(no replays)\n"
    col = UNIT_COLUMNS[unit] if UNIT_COLUMNS[unit] in table.columns else "capacity_blocks"
    if col == "capacity_gib":
        table = table.with_columns(pl.col(col).round(4))
    caps = sorted(table[col].unique().to_list())
    wide = table.pivot(
        on=col, index=["workload", "block_size", "policy", "semantics"],
        values="hit_rate", sort_columns=True,
    ).rename({str(c): f"cap {c}" for c in caps})
    return markdown_table(wide.sort("workload", "block_size", "semantics", "policy"))


def write_hit_rates(
    trace_paths: Mapping[tuple[str, int], Path | str], sweep_cfg: Any,
    out_parquet: Path | str, out_md: Path | str, model: ModelProfile | None = None,
    cost_model: CostModel | None = None, per_request_out: Path | str | None = None,
) -> pl.DataFrame:
    """Stage entry point: `replay/hit_rates.parquet` + `.md` (and with
    per_request_out `replay/per_request.parquet`).

    trace_paths: {(workload, block_size): traces/{workload}/b{bs}.parquet};
    sweep_cfg: SweepConfig (policies, semantics, capacities, capacity_unit
    are used; the block sizes are the keys of trace_paths); model: the named
    model whose KV bytes give `capacity_gib`; cost_model: recompute costs of
    cost-aware policies.
    """
    per_request: list[pl.DataFrame] | None = [] if per_request_out is not None else None
    table = hit_rate_table(trace_paths, sweep_cfg, model, cost_model, per_request)
    unit = str(getattr(sweep_cfg, "capacity_unit", "blocks"))
    label = {"blocks": "blocks", "tokens": "tokens", "gib": f"GiB of {model.name if model else ''} KV memory"}
    write_parquet(table, out_parquet)
    write_text(f"# Replay hit rates\n\nHit rate (hits / looked-up block accesses) per capacity in {label[unit]}.\n\n"
               + hit_rate_markdown(table, unit), out_md)
    if per_request is not None:
        write_parquet(per_request_table(per_request), per_request_out)
    return table
