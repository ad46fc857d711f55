"""The command line the Snakemake rules call: one sub-command per stage.

    python -m prefix_study.stages <stage> --config <stage dir>/config.yaml ...

Each sub-command reads the resolved config its rule wrote into the stage
directory, takes the typed parts that stage needs, and calls the stage's one
entry, `prefix_study.<stage>.stage.run`, with explicit arguments. Nothing
below this module sees an argparse namespace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence


def _cfg(path: str) -> Any:
    from prefix_study.config.compose import load_config

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
    from prefix_study.assets.stage import run

    run(_cfg(args.config).engine.model, args.out)


def workloads(args: argparse.Namespace) -> None:
    from prefix_study.workloads.stage import run

    run(_cfg(args.config), args.workload, args.out, args.summary)


def engine(args: argparse.Namespace) -> None:
    from prefix_study.cost import CostModel
    from prefix_study.engine.stage import run

    cfg = _cfg(args.config)
    cost = CostModel.from_config(cfg) if cfg.engine.clock == "cost_model" else None
    engine_cfg = cfg.engine
    if args.no_prefix_caching:  # the savings stage's baseline runs
        from omegaconf import OmegaConf

        engine_cfg = OmegaConf.merge(cfg.engine, {"prefix_caching": False})
    files = dict(v.split("=", 1) for v in args.workload)
    out_dirs = None
    if args.workload_file:  # one workload into exactly --out
        name = Path(args.workload_file).stem
        files, out_dirs = {name: args.workload_file}, {name: args.out}
    if not files or not (args.out or args.out_root):
        sys.exit("engine: give --workload NAME=FILE ... --out-root DIR, or --workload-file FILE --out DIR")
    run(engine_cfg, files, args.model, args.block_size, args.out_root or args.out,
        capacity_blocks=args.capacity, mixed=args.mixed, progress=not args.no_progress, cost=cost,
        out_dirs=out_dirs, mix_cfg=cfg.mix)


def traces(args: argparse.Namespace) -> None:
    from prefix_study.traces.stage import run

    cfg = _cfg(args.config)
    # The engine capacity sweep's mixed run is no configured workload.
    report = run(args.workload, cfg.workloads.get(args.workload), args.block_size, args.engine_dir or None,
                 args.out, args.check, args.blocks)
    if not report.get("ok", True):
        sys.exit(f"trace check failed for {args.workload} b{args.block_size}: see {args.check}")


def stats(args: argparse.Namespace) -> None:
    from prefix_study.stats.stage import run

    run(parse_pairs(args.trace), args.out, args.md, args.cdfs)


def replay(args: argparse.Namespace) -> None:
    from prefix_study.cost import CostModel, ModelProfile
    from prefix_study.replay.engine_sweep import EngineRunFiles
    from prefix_study.replay.stage import run

    cfg = _cfg(args.config)
    run(parse_pairs(args.trace), cfg.sweep, args.out, args.md, parse_pairs(args.engine_trace),
        int(cfg.engine.capacity_blocks), args.engine_capacity, ModelProfile.from_config(cfg.model),
        curves_out=args.curves, cost_model=CostModel.from_config(cfg),
        engine_runs=[EngineRunFiles.parse(v) for v in args.engine_run],
        engine_sweep_out=args.engine_sweep, engine_sweep_md=args.engine_sweep_md)


def mixed(args: argparse.Namespace) -> None:
    from prefix_study.cost import CostModel, ModelProfile
    from prefix_study.mixed.stage import run

    cfg = _cfg(args.config)
    traces = {w: p for (w, _), p in parse_pairs(args.trace).items()}
    run(traces, cfg.mix, cfg.workloads, args.out, args.md, ModelProfile.from_config(cfg.model),
        CostModel.from_config(cfg))


def cluster(args: argparse.Namespace) -> None:
    from prefix_study.cluster.stage import run

    run(_cfg(args.config), dict(v.split("=", 1) for v in args.trace),
        dict(v.split("=", 1) for v in args.engine_requests), args.out_dir, progress=not args.no_progress)


def figures(args: argparse.Namespace) -> None:
    from prefix_study.figures.stage import run

    run(args.reuse_cdfs, args.reuse_summary, args.hit_rates, args.mixed, args.engine_capacity,
        parse_pairs(args.engine_requests), args.out_dir, curves=args.curves, engine_sweep=args.engine_sweep)


def savings(args: argparse.Namespace) -> None:
    from prefix_study.savings.stage import run

    by_workload = lambda values: {w: p for (w, _), p in parse_pairs(values).items()}  # noqa: E731
    run(_cfg(args.config), parse_pairs(args.trace), by_workload(args.mixed_trace),
        dict(v.split("=", 1) for v in args.workload), args.hit_rates, args.mixed, args.out_dir,
        by_workload(args.engine), by_workload(args.engine_no_cache))


def _add(sub: Any, name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
    s = sub.add_parser(name, help=help)
    s.add_argument("--config", required=True, help="the stage directory's config.yaml")
    s.set_defaults(fn=fn)
    return s


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m prefix_study.stages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    pairs = "workload:bs=path"

    s = _add(sub, "assets", assets, "tokenizer + random-weight GPT-2 model directory")
    s.add_argument("--out", required=True)

    s = _add(sub, "workloads", workloads, "one workload's request stream")
    s.add_argument("--workload", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--summary", required=True)

    s = _add(sub, "engine", engine, "run workloads through one vLLM engine at one block size")
    s.add_argument("--workload", action="append", default=[], help="name=request stream parquet")
    s.add_argument("--out-root", default=None, help="writes <out-root>/<workload>/b<bs>/")
    s.add_argument("--workload-file", default=None, help="one request stream (with --out)")
    s.add_argument("--out", default=None, help="the one workload's run directory")
    s.add_argument("--model", required=True)
    s.add_argument("--block-size", type=int, required=True)
    s.add_argument("--capacity", type=int, default=None, help="blocks (default engine.capacity_blocks)")
    s.add_argument("--mixed", action="store_true", help="also run the mixed workload")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-prefix-caching", action="store_true",
                   help="prefix caching off (the savings stage's TTFT baseline)")

    s = _add(sub, "traces", traces, "block trace of one workload at one block size")
    s.add_argument("--workload", required=True)
    s.add_argument("--block-size", type=int, required=True)
    s.add_argument("--engine-dir", default=None)
    s.add_argument("--out", required=True)
    s.add_argument("--check", required=True)
    s.add_argument("--blocks", default=None, help="per-block records (engine block sizes only)")

    s = _add(sub, "stats", stats, "reuse statistics of every trace of the sweep")
    s.add_argument("--trace", action="append", default=[], help=pairs)
    s.add_argument("--out", required=True)
    s.add_argument("--md", required=True)
    s.add_argument("--cdfs", required=True)

    s = _add(sub, "replay", replay, "policy x semantics x capacity replays, and at the engine's capacity")
    s.add_argument("--trace", action="append", default=[], help=pairs)
    s.add_argument("--engine-trace", action="append", default=[], help=pairs + " (engine block sizes)")
    s.add_argument("--out", required=True)
    s.add_argument("--md", required=True)
    s.add_argument("--engine-capacity", required=True)
    s.add_argument("--curves", default=None, help="also write the hit-rate curves (replay/curves.parquet)")
    s.add_argument("--engine-run", action="append", default=[],
                   help="RUN:BS:CAP=ENGINE_DIR,TRACE: an engine run and its block trace")
    s.add_argument("--engine-sweep", default=None, help="engine vs batched vs sequential replay (parquet)")
    s.add_argument("--engine-sweep-md", default=None, help="the same as a Markdown table")

    s = _add(sub, "mixed", mixed, "interleaved workloads: baselines vs workload-aware LRU")
    s.add_argument("--trace", action="append", default=[], help=pairs)
    s.add_argument("--out", required=True)
    s.add_argument("--md", required=True)

    s = _add(sub, "figures", figures, "every plot and the engine-vs-replay table")
    s.add_argument("--reuse-cdfs", required=True)
    s.add_argument("--reuse-summary", required=True)
    s.add_argument("--hit-rates", required=True)
    s.add_argument("--mixed", required=True)
    s.add_argument("--engine-capacity", required=True)
    s.add_argument("--engine-sweep", default=None, help="replay/engine_sweep.parquet (engine_capacity figure)")
    s.add_argument("--engine-requests", action="append", default=[], help="workload:bs=requests.parquet")
    s.add_argument("--curves", default=None, help="replay/curves.parquet (hit_rate_curves figure)")
    s.add_argument("--out-dir", required=True)

    s = _add(sub, "savings", savings, "prefill FLOPs/TTFT saved per replay, equal memory, engine TTFT")
    s.add_argument("--trace", action="append", default=[], help=pairs + " (sweep traces)")
    s.add_argument("--mixed-trace", action="append", default=[], help=pairs + " (mix traces)")
    s.add_argument("--workload", action="append", default=[], help="workload=request stream parquet")
    s.add_argument("--hit-rates", required=True)
    s.add_argument("--mixed", required=True)
    s.add_argument("--engine", action="append", default=[], help="workload:bs=engine dir (prefix caching on)")
    s.add_argument("--engine-no-cache", action="append", default=[], help="workload:bs=engine dir (off)")
    s.add_argument("--out-dir", required=True)

    s = _add(sub, "cluster", cluster, "routers x replica counts over every workload's trace")
    s.add_argument("--trace", action="append", default=[], help="workload=trace path")
    s.add_argument("--engine-requests", action="append", default=[], help="workload=requests.parquet")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
