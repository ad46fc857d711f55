"""Trace stage entry point: one workload at one block size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.config.schema import EXTERNAL_TRACE_KINDS
from prefix_study.io import write_json, write_parquet


def write_trace(cfg: Any, workload: str, block_size: int, engine_dir: str | Path | None,
                out: str | Path, check_out: str | Path) -> dict[str, Any]:
    """Derive (engine workloads) or import (external traces) a block trace.

    For an engine workload at the engine's own block size the derivation and
    the engine's accounting are checked against its KV events; the report is
    written to `check_out` and a failed check fails the rule.
    """
    wl = cfg.workloads[workload]
    if wl.kind in EXTERNAL_TRACE_KINDS:
        from prefix_study.traces.importers import import_trace

        frame, report = import_trace(wl.kind, wl.trace_path, workload, wl.max_requests,
                                     bool(wl.skip_bad_lines))
        report = {"source": str(wl.trace_path), "kind": wl.kind, **report, "ok": True}
    else:
        from prefix_study.traces.derive import check_engine_consistency, derive_block_trace

        engine_dir = Path(engine_dir)
        meta = json.loads((engine_dir / "run.json").read_text())
        requests = pl.read_parquet(engine_dir / "requests.parquet")
        frame = derive_block_trace(requests, block_size, meta["none_hash_seed"],
                                   engine_block_size=int(meta["block_size"]),
                                   algo=meta["prefix_hash_algo"])
        report = {"source": str(engine_dir), "engine_block_size": int(meta["block_size"]),
                  "requests": requests.height, "blocks": frame.height, "ok": True}
        if int(meta["block_size"]) == block_size:
            kv_events = pl.read_parquet(engine_dir / "kv_events.parquet")
            report.update(check_engine_consistency(requests, kv_events, frame, block_size))
    write_parquet(frame, out)
    write_json(report, check_out)
    return report
