"""Workloads stage: one workload's timed request stream (rule `workload`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from prefix_study.config.schema import PrefixStudyConfig
from prefix_study.io import write_json
from prefix_study.workloads.request_stream import build_workload_file, workload_summary
from prefix_study.workloads.sharegpt import load_sharegpt


def run(cfg: PrefixStudyConfig, workload: str, out: str | Path, summary_out: str | Path) -> dict[str, Any]:
    """Write `workloads/{workload}.parquet` and its `.summary.json` (with the
    dataset's load report). `cfg` supplies `seed`, `dataset` and the workload's
    config."""
    path = build_workload_file(cfg, workload, out)
    summary = workload_summary(pl.read_parquet(path))
    summary["dataset_load"] = load_sharegpt(cfg).report.summary()
    write_json(summary, summary_out)
    return summary
