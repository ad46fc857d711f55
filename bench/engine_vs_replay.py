"""Engine vs batched replay vs sequential replay at binding capacities.

    env VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 \\
        .venv/bin/python bench/engine_vs_replay.py [--capacities 64 128 256 512] \\
        [--block-sizes 32 64] [--max-num-seqs 16] [--out results/bench/engine_vs_replay] [overrides...]

For every engine block size and capacity (in vLLM blocks, including its null
block: the replays get capacity - 1) one vLLM engine is built and every
ShareGPT workload of the config (default: conf/ defaults) runs through it,
batched (`max_num_seqs`). `max_model_len` follows the capacity where a
max-length request would not fit; longer requests are skipped (counted).
Per workload: the token hit rate vLLM served, the batched replay driven by
the engine's recorded schedule (replay/batched.py), the sequential prefix
LRU replay of the derived trace, and how many requests' cached tokens differ
from the engine's. Writes `<out>.md`, `<out>.parquet` (summary),
`<out>_requests.parquet` (per request) and `<out>.png/.svg`. Exit code 1 if
the batched replay differs from the engine anywhere (its target is 0).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import polars as pl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacities", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--block-sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--max-num-seqs", type=int, default=16)
    ap.add_argument("--workloads", nargs="*", default=None, help="subset of the config's workloads")
    ap.add_argument("--out", default="results/bench/engine_vs_replay")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the config")
    args = ap.parse_args(argv)

    from prefix_study.assets.model import build_model_dir
    from prefix_study.config.compose import compose_config
    from engine_compare import binding_spec, compare_requests, default_streams, run_engine, summarize
    from prefix_study.engine.runtime import build_engine
    from prefix_study.io import markdown_table, write_parquet, write_text

    cfg = compose_config(args.overrides)
    streams = default_streams(cfg)
    if args.workloads:
        streams = {w: streams[w] for w in args.workloads}
    tmp = tempfile.mkdtemp(prefix="engine_vs_replay_")
    m = cfg.engine.model
    model_dir = build_model_dir(Path(tmp) / "model", shape=m.shape, seed=m.seed, n_positions=m.n_positions)
    engines = []  # keep every engine alive: vLLM tears down process-wide state on collection
    rows, per_request = [], []
    t0 = time.perf_counter()
    for bs in args.block_sizes:
        for cap in args.capacities:
            spec = binding_spec(cfg, model_dir, bs, cap, args.max_num_seqs)
            engine = build_engine(spec)
            engines.append(engine)
            for name, stream in streams.items():
                res, trace, skipped = run_engine(engine, stream, cfg, desc=f"{name} b{bs} c{cap}")
                req = compare_requests(res, trace, cap, bs).with_columns(
                    pl.lit(bs).alias("block_size"), pl.lit(cap).alias("capacity_blocks"))
                per_request.append(req)
                rows.append({"workload": name, "block_size": bs, "capacity_blocks": cap,
                             "max_model_len": spec.max_model_len, "skipped": len(skipped),
                             **summarize(req), "preemptions": res.stats["freed_by_preemption"],
                             "failed_allocations": res.stats["failed_allocations"]})
                print(rows[-1], flush=True)
    table = pl.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table, out.with_suffix(".parquet"))
    write_parquet(pl.concat(per_request), out.parent / f"{out.name}_requests.parquet")
    md = (
        f"# Engine vs batched replay vs sequential replay (max_num_seqs={args.max_num_seqs})\n\n"
        "Token hit rates (cached / prompt tokens). capacity_blocks is vLLM's (the replays get one "
        "block less: vLLM's null block). batched: vLLM's free queue replayed along the engine's "
        "recorded schedule; sequential: one request at a time in the engine's order. *_differ: "
        "requests whose cached tokens differ from the engine's. skipped: requests longer than "
        f"max_model_len. Wall time {time.perf_counter() - t0:.0f} s.\n\n"
        + markdown_table(table)
    )
    write_text(md, out.with_suffix(".md"))
    _figure(table, out)
    print(md)
    return 0 if table["batched_differ"].sum() == 0 else 1


def _figure(table: pl.DataFrame, out: Path) -> None:
    from prefix_study.figures.style import apply_style, new_figure, save_figure

    apply_style()
    workloads = table["workload"].unique(maintain_order=True).to_list()
    sizes = table["block_size"].unique(maintain_order=True).to_list()
    fig, axes = new_figure(len(sizes), len(workloads), layout="constrained")
    for i, bs in enumerate(sizes):
        for j, w in enumerate(workloads):
            ax = axes[i][j]
            g = table.filter((pl.col("block_size") == bs) & (pl.col("workload") == w)).sort("capacity_blocks")
            ax.plot(g["capacity_blocks"], g["engine"], "o-", label="engine (vLLM)", color="black")
            ax.plot(g["capacity_blocks"], g["batched"], "x--", label="batched replay", color="#d62728")
            ax.plot(g["capacity_blocks"], g["sequential"], "s:", label="sequential replay", color="#1f77b4",
                    markerfacecolor="none")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{w} b{bs}")
            ax.set_xlabel("engine capacity (blocks)")
            ax.set_ylabel("token hit rate")
            ax.set_ylim(-0.02, 1.02)
    axes[0][0].legend()
    save_figure(fig, out)


if __name__ == "__main__":
    sys.exit(main())
