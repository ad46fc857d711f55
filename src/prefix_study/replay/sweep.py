"""The replay stage: policy x semantics x capacity over every trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import polars as pl

from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.simulate import SEMANTICS, replay
from prefix_study.replay.trace import BlockTrace, load_block_trace

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


def hit_rate_rows(
    trace: BlockTrace, workload: str, block_size: int, policies: Iterable[str],
    semantics: Iterable[str], capacities: Iterable[int],
) -> list[dict[str, Any]]:
    rows = []
    for policy in policies:
        for sem in semantics:
            for cap in capacities:
                r = replay(trace, policy, int(cap), sem)
                rows.append({
                    "workload": workload, "block_size": int(block_size), "policy": policy,
                    "semantics": sem, "capacity_blocks": int(cap), "accesses": r.accesses,
                    "hits": r.hits, "hit_rate": r.hit_rate,
                })
    return rows


def hit_rate_table(trace_paths: Mapping[tuple[str, int], Path | str], sweep_cfg: Any) -> pl.DataFrame:
    """All replays of the sweep (sweep_cfg: policies, semantics, capacities)."""
    for sem in sweep_cfg.semantics:
        if sem not in SEMANTICS:
            raise ValueError(f"sweep.semantics: {sem!r} not in {list(SEMANTICS)}")
    rows: list[dict[str, Any]] = []
    for (workload, block_size) in sorted(trace_paths):
        trace = load_block_trace(trace_paths[(workload, block_size)])
        rows += hit_rate_rows(trace, workload, block_size, [str(p) for p in sweep_cfg.policies],
                              [str(s) for s in sweep_cfg.semantics], sorted(sweep_cfg.capacities))
    return pl.DataFrame(rows, schema=HIT_RATE_SCHEMA).sort(
        "workload", "block_size", "policy", "semantics", "capacity_blocks"
    )


def hit_rate_markdown(table: pl.DataFrame) -> str:
    """Hit rates with one column per capacity."""
    if table.height == 0:
        return "(no replays)\n"
    caps = sorted(table["capacity_blocks"].unique().to_list())
    wide = table.pivot(
        on="capacity_blocks", index=["workload", "block_size", "policy", "semantics"],
        values="hit_rate", sort_columns=True,
    ).rename({str(c): f"cap {c}" for c in caps})
    return markdown_table(wide.sort("workload", "block_size", "semantics", "policy"))


def write_hit_rates(
    trace_paths: Mapping[tuple[str, int], Path | str], sweep_cfg: Any,
    out_parquet: Path | str, out_md: Path | str,
) -> pl.DataFrame:
    """Stage entry point: `replay/hit_rates.parquet` + `.md`.

    trace_paths: {(workload, block_size): traces/{workload}/b{bs}.parquet};
    sweep_cfg: SweepConfig (policies, semantics, capacities are used; the
    block sizes are the keys of trace_paths).
    """
    table = hit_rate_table(trace_paths, sweep_cfg)
    write_parquet(table, out_parquet)
    write_text("# Replay hit rates\n\nHit rate (hits / looked-up block accesses) per capacity in blocks.\n\n"
               + hit_rate_markdown(table), out_md)
    return table
