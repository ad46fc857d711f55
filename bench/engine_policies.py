"""The mixed workload through the real engine under each in-engine eviction
policy, beside the replay's prediction.

    env VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 \\
        .venv/bin/python bench/engine_policies.py [--capacities 128] [--max-num-seqs 1] \\
        [--policies lru fifo wa_lru sieve] [--out results/bench/engine_policies] [overrides...]

The config's ShareGPT workloads are mixed into one request stream
(workloads/mixed_stream.py, `mix.pattern`/`mix.burst`) and run at `mix.block_size`
through one engine per policy (engine/eviction.py) and capacity (vLLM blocks,
including the null block). WA-LRU admits `mix.cache_friendly`, or, if that is
empty, the workloads whose sequential prefix-LRU hit rate on the LRU engine
run's trace (their requests alone) reaches `mix.friendly_threshold`, as the
mixed stage chooses. The replay prediction replays each engine run's derived
trace (the order the engine ran) at capacity - 1: `lru`, `fifo` and `sieve` with their
vLLM block-pool `serve` (their prefix state machines), `wa_lru` with
mixed/workload_aware.py's `wa_lru_hit_mask`. Token hit rates overall and per
workload, and the number of requests whose cached tokens differ. Writes
`<out>.md`, `<out>.parquet`, `<out>.png/.svg`.
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


def replay_tokens(trace: pl.DataFrame, policy: str, capacity: int, block_size: int,
                  friendly: list[str]) -> pl.DataFrame:
    from prefix_study.mixed.workload_aware import wa_lru_hit_mask
    from prefix_study.replay.per_request import per_request_from_mask, per_request_hits
    from prefix_study.replay.trace import encode_trace

    if policy == "wa_lru":
        encoded = encode_trace(trace)
        hits = per_request_from_mask(trace, encoded, wa_lru_hit_mask(encoded, friendly, capacity, "prefix"))
    else:
        hits = per_request_hits(trace, capacity, policy, "prefix")
    return hits.select("request_id", (pl.col("hit_blocks") * block_size).alias("replay"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacities", type=int, nargs="+", default=[128])
    ap.add_argument("--max-num-seqs", type=int, default=1)
    ap.add_argument("--policies", nargs="+", default=["lru", "fifo", "wa_lru", "sieve"])
    ap.add_argument("--out", default="results/bench/engine_policies")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the config")
    args = ap.parse_args(argv)

    from prefix_study.assets.model import build_model_dir
    from prefix_study.config.compose import compose_config
    from engine_compare import binding_spec, default_streams, run_engine
    from prefix_study.engine.runtime import build_engine
    from prefix_study.io import markdown_table, write_parquet, write_text
    from prefix_study.workloads.mixed_stream import mixed_request_stream
    from prefix_study.mixed.workload_aware import choose_cache_friendly
    from prefix_study.replay.per_request import per_request_hits

    cfg = compose_config(args.overrides)
    streams = default_streams(cfg)
    stream = mixed_request_stream(streams, str(cfg.mix.pattern), int(cfg.mix.burst))
    bs = int(cfg.mix.block_size)
    tmp = tempfile.mkdtemp(prefix="engine_policies_")
    m = cfg.engine.model
    model_dir = build_model_dir(Path(tmp) / "model", shape=m.shape, seed=m.seed, n_positions=m.n_positions)
    engines, rows = [], []
    t0 = time.perf_counter()
    for cap in args.capacities:
        friendly = sorted(cfg.mix.cache_friendly)
        for policy in (["lru"] + [p for p in args.policies if p != "lru"]):
            if policy == "wa_lru" and not friendly:
                raise SystemExit("wa_lru needs the lru run first (automatic cache-friendly choice)")
            spec = binding_spec(cfg, model_dir, bs, cap, args.max_num_seqs, eviction=policy,
                                cache_friendly=tuple(friendly) if policy == "wa_lru" else ())
            engine = build_engine(spec)
            engines.append(engine)  # keep alive (vLLM tears down process state on collection)
            res, trace, skipped = run_engine(engine, stream, cfg, desc=f"mixed {policy} c{cap}")
            if policy == "lru" and not friendly:
                single = {}
                for w in streams:
                    sub = trace.filter(pl.col("workload") == w)
                    pr = per_request_hits(sub, cap - 1, "lru", "prefix")
                    single[w] = float(pr["hit_blocks"].sum() / max(pr["lookup_blocks"].sum(), 1))
                friendly = choose_cache_friendly(single, threshold=float(cfg.mix.friendly_threshold))
                print("cache-friendly:", friendly, single, flush=True)
            per = res.requests.select("request_id", "workload", "num_prompt_tokens",
                                      pl.col("num_cached_tokens").cast(pl.Int64).alias("engine")).join(
                replay_tokens(trace, policy, cap - 1, bs, friendly), on="request_id", how="left",
            ).with_columns(pl.col("replay").fill_null(0))  # a sub-block prompt has no trace rows
            for w, g in [*per.group_by("workload", maintain_order=True), (("all",), per)]:
                prompt = max(int(g["num_prompt_tokens"].sum()), 1)
                rows.append({"capacity_blocks": cap, "policy": policy, "workload": w[0] if isinstance(w, tuple) else w,
                             "requests": g.height, "engine": g["engine"].sum() / prompt,
                             "replay": g["replay"].fill_null(0).sum() / prompt,
                             "differ": int((g["replay"] != g["engine"]).fill_null(True).sum()),
                             "friendly": ",".join(friendly) if policy == "wa_lru" else "",
                             "skipped": len(skipped)})
                print(rows[-1], flush=True)
    table = pl.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table, out.with_suffix(".parquet"))
    md = (f"# Mixed workload in the real engine: eviction policies (block size {bs}, "
          f"max_num_seqs={args.max_num_seqs})\n\n"
          "Token hit rates (cached / prompt tokens); engine = vLLM's num_cached_tokens with the "
          "policy installed in its block pool; replay = the prefix replay of the same run's trace "
          "at capacity - 1; differ = requests whose cached tokens differ. "
          f"Wall time {time.perf_counter() - t0:.0f} s.\n\n" + markdown_table(table))
    write_text(md, out.with_suffix(".md"))
    _figure(table, out)
    print(md)
    return 0


def _figure(table: pl.DataFrame, out: Path) -> None:
    import numpy as np

    from prefix_study.figures.style import new_figure, policy_color, save_figure

    caps = table["capacity_blocks"].unique(maintain_order=True).to_list()
    fig, axes = new_figure(1, len(caps), panel_w=5.0, layout="constrained")
    for k, cap in enumerate(caps):
        ax = axes[0][k]
        g = table.filter(pl.col("capacity_blocks") == cap)
        workloads = g["workload"].unique(maintain_order=True).to_list()
        policies = g["policy"].unique(maintain_order=True).to_list()
        width = 0.8 / len(policies)
        x = np.arange(len(workloads))
        for i, p in enumerate(policies):
            gp = g.filter(pl.col("policy") == p)
            vals = dict(zip(gp["workload"], gp["engine"]))
            reps = dict(zip(gp["workload"], gp["replay"]))
            xs = x + (i - (len(policies) - 1) / 2) * width
            ax.bar(xs, [vals[w] for w in workloads], width, color=policy_color(p), label=f"{p} (engine)")
            ax.plot(xs, [reps[w] for w in workloads], "k_", markersize=10,
                    label="replay" if i == 0 else None)
        ax.set_xticks(x, workloads, rotation=20)
        ax.set_ylabel("token hit rate")
        ax.set_title(f"mixed workload, {cap} blocks")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, out)


if __name__ == "__main__":
    sys.exit(main())
