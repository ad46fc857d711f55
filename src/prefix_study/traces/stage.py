"""Traces stage: one workload's block trace at one block size.

Rule `block_trace` (workflow/rules/traces.smk) calls `run`; at an engine block
size rule `engine_block_trace` also asks for `blocks_out`, the per-block
records of the engine run, which the run index lists (rule `run_index`); rule
`engine_capacity_trace` derives and checks each run of the engine capacity sweep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.config.schema import EXTERNAL_TRACE_KINDS, WorkloadConfig
from prefix_study.io import write_json, write_parquet


def run(workload: str, workload_cfg: WorkloadConfig | None, block_size: int, engine_dir: str | Path | None,
        out: str | Path, check_out: str | Path, blocks_out: str | Path | None = None) -> dict[str, Any]:
    """Derive (engine runs) or import (external traces) a block trace.

    workload_cfg: None for an engine run of no configured workload (the
    capacity sweep's mixed run).
    For an engine workload at the engine's own block size the derivation and
    the engine's accounting are checked against its KV events; the report is
    written to `check_out` and a failed check fails the rule (`ok` false).
    `blocks_out` (engine block sizes only): per-block hits, uses, use times,
    stores and evictions (`traces.derive.block_usage`).
    """
    wl = workload_cfg
    if wl is not None and wl.kind in EXTERNAL_TRACE_KINDS:
        if blocks_out is not None:
            raise ValueError(f"{workload}: an external trace has no engine run to write blocks for")
        from prefix_study.config.inputs import project_path
        from prefix_study.traces.importers import import_trace

        source = project_path(wl.trace_path)  # relative: to the project directory
        frame, report = import_trace(str(wl.kind), source, workload, wl.max_requests,
                                     bool(wl.skip_bad_lines), block_size)
        report = {"source": str(source), "kind": str(wl.kind), **report, "ok": True}
    else:
        from prefix_study.traces.derive import (
            block_usage, check_engine_consistency, check_server_consistency, derive_block_trace)

        engine_dir = Path(engine_dir)
        meta = json.loads((engine_dir / "run.json").read_text())
        engine_block_size = int(meta["block_size"])
        requests = pl.read_parquet(engine_dir / "requests.parquet")
        frame = derive_block_trace(requests, block_size, meta["none_hash_seed"],
                                   engine_block_size=engine_block_size,
                                   algo=meta["prefix_hash_algo"])
        report = {"source": str(engine_dir), "engine_block_size": engine_block_size,
                  "requests": requests.height, "blocks": frame.height, "ok": True}
        if engine_block_size == block_size:
            kv_events = pl.read_parquet(engine_dir / "kv_events.parquet")
            # A server run has no scheduler lookups: it is checked on the client's times.
            check = check_server_consistency if meta.get("engine_mode") == "server" \
                else check_engine_consistency
            report.update(check(requests, kv_events, frame, block_size))
            if blocks_out is not None:
                write_parquet(block_usage(frame, kv_events), blocks_out)
        elif blocks_out is not None:
            raise ValueError(f"{workload} b{block_size}: per-block records need the engine run at "
                             f"this block size (it ran at {engine_block_size})")
    write_parquet(frame, out)
    write_json(report, check_out)
    return report
