"""The `workloads/{workload}.parquet` contract: build, write, summarize.

Columns and types are part of the interface (see docs/architecture.md). Rows are sorted
by (arrival_s, request_id); the same config and seed give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from prefix_study.io import write_parquet
from prefix_study.workloads.arrivals import workload_rng
from prefix_study.workloads.builders import SHAREGPT_BUILDERS, WorkloadError
from prefix_study.workloads.client import ConversationScript, RequestEvent, schedule_requests
from prefix_study.workloads.sharegpt import ShareGPTData, load_sharegpt

REQUEST_STREAM_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("workload", pa.string()),
    ("conversation_id", pa.string()),
    ("turn_index", pa.int32()),
    ("mode", pa.string()),
    ("arrival_s", pa.float64()),
    ("think_time_s", pa.float64()),
    ("prompt_token_ids", pa.list_(pa.int32())),
    ("scripted_output_token_ids", pa.list_(pa.int32())),
    ("prompt_text", pa.string()),
])


def workload_config(cfg: Any, name: str) -> Any:
    if name not in cfg.workloads:
        raise WorkloadError(f"no workload named {name!r}; configured: {sorted(cfg.workloads)}")
    wl = cfg.workloads[name]
    if wl.kind not in SHAREGPT_BUILDERS:
        raise WorkloadError(
            f"workloads.{name}.kind={wl.kind!r} is an external block-hash trace; it enters at "
            f"the traces stage and has no ShareGPT request stream (ShareGPT kinds: "
            f"{sorted(SHAREGPT_BUILDERS)})"
        )
    return wl


def build_scripts(cfg: Any, name: str, data: ShareGPTData | None = None) -> list[ConversationScript]:
    """What each conversation of workload `name` sends (no timing yet)."""
    wl = workload_config(cfg, name)
    data = data if data is not None else load_sharegpt(cfg)
    if not data.conversations:
        raise WorkloadError(
            f"dataset.path: no usable conversation in {data.report.path} ({data.report.summary()}). "
            "A ShareGPT file is a JSON array of records, each with a `conversations` list of "
            "{from, value} messages: human first, then assistant, alternating. Point dataset.path "
            "at such a file (or set it to null for the packaged ShareGPT V3)."
        )
    select = workload_rng(cfg.seed, name, "select")
    if wl.kind == "qa":
        return SHAREGPT_BUILDERS["qa"](name, wl, data.conversations, select,
                                       workload_rng(cfg.seed, name, "assign"))
    return SHAREGPT_BUILDERS[wl.kind](name, wl, data.conversations, select)


def build_workload_events(cfg: Any, name: str, data: ShareGPTData | None = None) -> list[RequestEvent]:
    """The timed request events of workload `name`, sorted by (arrival_s, request_id)."""
    wl = workload_config(cfg, name)
    scripts = build_scripts(cfg, name, data)
    return schedule_requests(
        name, scripts, wl.arrival_rate, wl.think_time,
        arrival_rng=workload_rng(cfg.seed, name, "arrivals"),
        think_rng=workload_rng(cfg.seed, name, "think_time"),
    )


def events_to_table(events: list[RequestEvent]) -> pa.Table:
    """Events (already sorted) as an Arrow table with the contract's exact types."""
    columns = {f.name: [getattr(e, f.name) for e in events] for f in REQUEST_STREAM_SCHEMA}
    for ids in ("prompt_token_ids", "scripted_output_token_ids"):
        columns[ids] = [list(v) for v in columns[ids]]
    return pa.Table.from_pydict(columns, schema=REQUEST_STREAM_SCHEMA)


def build_workload_table(cfg: Any, name: str, data: ShareGPTData | None = None) -> pa.Table:
    return events_to_table(build_workload_events(cfg, name, data))


def build_workload_file(cfg: Any, name: str, out_path: str | Path) -> Path:
    """Entry point of the workloads rule: write `workloads/{name}.parquet` atomically."""
    return write_parquet(build_workload_table(cfg, name), out_path)


def workload_summary(frame: pl.DataFrame | pa.Table) -> dict[str, Any]:
    """Requests, conversations and prompt-length statistics of one request stream."""
    if isinstance(frame, pa.Table):
        frame = pl.from_arrow(frame)
    lengths = frame["prompt_token_ids"].list.len().to_numpy() if frame.height else np.zeros(0)
    outputs = frame["scripted_output_token_ids"].list.len().to_numpy() if frame.height else np.zeros(0)

    def stat(values: np.ndarray, fn: Any) -> float:
        return float(fn(values)) if len(values) else 0.0

    workloads = frame["workload"].unique().sort().to_list()
    return {
        "workload": ",".join(workloads),
        "requests": frame.height,
        "conversations": frame["conversation_id"].n_unique(),
        "prompt_tokens_mean": stat(lengths, np.mean),
        "prompt_tokens_p50": stat(lengths, lambda v: np.percentile(v, 50)),
        "prompt_tokens_p99": stat(lengths, lambda v: np.percentile(v, 99)),
        "prompt_tokens_max": int(lengths.max()) if len(lengths) else 0,
        "prompt_tokens_total": int(lengths.sum()),
        "output_tokens_mean": stat(outputs, np.mean),
    }
