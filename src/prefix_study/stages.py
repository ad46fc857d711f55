"""Thin command-line entry points that the Snakemake rules call.

Each stage reads the resolved config its rule wrote into the stage directory
(`<stage>/<hash>/config.yaml`), does one piece of work through the package's
functions, and writes its outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import polars as pl


def _cfg(path: str) -> Any:
    from prefix_study.config import load_config

    return load_config(path)


def parse_pairs(values: Sequence[str]) -> dict[tuple[str, int], str]:
    """`workload:bs=path` arguments -> {(workload, bs): path}."""
    out = {}
    for v in values:
        key, path = v.split("=", 1)
        workload, bs = key.rsplit(":", 1)
        out[(workload, int(bs))] = path
    return out


def assets(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    from prefix_study.assets.model import build_model_dir

    cfg = _cfg(args.config)
    out = Path(args.out)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", dir=out.parent))
    try:
        build_model_dir(tmp, cfg.engine.model.shape, cfg.engine.model.seed, cfg.engine.model.n_positions)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def workload(args: argparse.Namespace) -> None:
    from prefix_study.io import write_json
    from prefix_study.workloads import build_workload_file, workload_summary
    from prefix_study.workloads.sharegpt import load_sharegpt

    cfg = _cfg(args.config)
    path = build_workload_file(cfg, args.workload, args.out)
    summary = workload_summary(pl.read_parquet(path))
    summary["dataset_load"] = load_sharegpt(cfg).report.summary()
    write_json(summary, args.summary)


def engine(args: argparse.Namespace) -> None:
    from prefix_study.engine.stage import run_engine_stage

    cfg = _cfg(args.config)
    run_engine_stage(cfg.engine, args.workload_file, args.model, args.block_size, args.out,
                     progress=not args.no_progress)


def trace(args: argparse.Namespace) -> None:
    from prefix_study.traces.stage import write_trace

    cfg = _cfg(args.config)
    report = write_trace(cfg, args.workload, args.block_size, args.engine_dir, args.out, args.check)
    if not report.get("ok", True):
        sys.exit(f"trace check failed for {args.workload} b{args.block_size}: see {args.check}")


def stats(args: argparse.Namespace) -> None:
    from prefix_study.stats import write_reuse_summary

    write_reuse_summary(parse_pairs(args.trace), args.out, args.md, args.cdfs)


def replay(args: argparse.Namespace) -> None:
    from prefix_study.replay.sweep import write_hit_rates

    cfg = _cfg(args.config)
    write_hit_rates(parse_pairs(args.trace), cfg.sweep, args.out, args.md)


def mixed(args: argparse.Namespace) -> None:
    from prefix_study.mixed import write_mixed_hit_rates

    cfg = _cfg(args.config)
    paths = {w: p for (w, _), p in parse_pairs(args.trace).items()}
    write_mixed_hit_rates(paths, cfg.mix, cfg.workloads, args.out, args.md)


def figures(args: argparse.Namespace) -> None:
    from prefix_study.report.figures import write_figures

    write_figures(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m prefix_study.stages", description=__doc__)
    sub = p.add_subparsers(dest="stage", required=True)

    s = sub.add_parser("assets", help="tokenizer + random-weight GPT-2 model directory")
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=assets)

    s = sub.add_parser("workload", help="one workload's request stream")
    s.add_argument("--config", required=True)
    s.add_argument("--workload", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--summary", required=True)
    s.set_defaults(fn=workload)

    s = sub.add_parser("engine", help="run one workload through vLLM at one block size")
    s.add_argument("--config", required=True)
    s.add_argument("--workload-file", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--block-size", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=engine)

    s = sub.add_parser("trace", help="block trace of one workload at one block size")
    s.add_argument("--config", required=True)
    s.add_argument("--workload", required=True)
    s.add_argument("--block-size", type=int, required=True)
    s.add_argument("--engine-dir", default=None)
    s.add_argument("--out", required=True)
    s.add_argument("--check", required=True)
    s.set_defaults(fn=trace)

    for name, fn in (("stats", stats), ("replay", replay), ("mixed", mixed)):
        s = sub.add_parser(name)
        s.add_argument("--config", required=True)
        s.add_argument("--trace", action="append", default=[], help="workload:bs=path")
        s.add_argument("--out", required=True)
        s.add_argument("--md", required=True)
        if name == "stats":
            s.add_argument("--cdfs", required=True)
        s.set_defaults(fn=fn)

    s = sub.add_parser("figures")
    s.add_argument("--config", required=True)
    s.add_argument("--reuse-cdfs", required=True)
    s.add_argument("--hit-rates", required=True)
    s.add_argument("--reuse-summary", required=True)
    s.add_argument("--mixed", required=True)
    s.add_argument("--engine", action="append", default=[], help="workload:bs=engine dir")
    s.add_argument("--trace", action="append", default=[], help="workload:bs=path")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(fn=figures)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
