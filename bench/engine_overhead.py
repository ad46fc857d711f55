"""Engine overhead: plain `LLM.generate` vs the instrumented driver, same requests.

    env VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 \\
        .venv/bin/python bench/engine_overhead.py [--block-size 32] [--requests N] [--repeats 3] [--scale 1]

The request set is the real `chat_multi` and `qa` workloads (conf/ defaults,
optionally scaled with --scale; script mode: every output token is forced by
the token simulator), so it has realistic prefix sharing (multi-turn
histories, shared QA contexts). All
requests are submitted at once, in the same order (by request id), with the
same prompts and scripts, through

- plain: an engine built without observers (`build_engine(..., instrument=False)`:
  no KV events, no wrappers) and `llm.generate(prompts, params, use_tqdm=False)`;
- instrumented: an engine with the KV-event recorder and the prefix-lookup
  wrapper, driven by `drive()` with its progress bar ON (what users get); for
  "all at once" every request is its own conversation with arrival 0.

Each engine is warmed up once (an untimed run of the whole set); the timed
runs then alternate plain / instrumented, each on an emptied prefix cache,
and the medians are reported (the best runs too): wall time,
prompt and output tokens/s, and the prefix-cache hit rate (sum of
`num_cached_tokens` / sum of prompt tokens; the two paths may differ slightly
because batching decides which request stores a shared block first).

Nothing is asserted on time (exit 0); the exit code is 1 if any generated
token ids differ from the scripts on either path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from prefix_study import env

env.apply()
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

import polars as pl

from prefix_study.assets.model import build_model_dir
from prefix_study.config.compose import compose_config
from prefix_study.engine.driver import drive
from prefix_study.engine.requests import check_request_stream
from prefix_study.config.schema import EngineConfig
from prefix_study.engine.runtime import EngineSpec, build_engine
from prefix_study.engine.simulator import simulator_params
from prefix_study.workloads import build_workload_table
from prefix_study.workloads.sharegpt import load_sharegpt

WORKLOADS = ("chat_multi", "qa")
MAX_MODEL_LEN = 2048
TARGET = 1.10


def request_set(limit: int | None, scale: int = 1) -> pl.DataFrame:
    """The real workloads' requests, flattened to "all at once" (arrival 0, no turns).

    `scale` multiplies each workload's default number of conversations.
    """
    base = compose_config()
    cfg = compose_config([f"workloads.{name}.num_conversations={base.workloads[name].num_conversations * scale}"
                          for name in WORKLOADS])
    data = load_sharegpt(cfg)
    frame = pl.concat([pl.from_arrow(build_workload_table(cfg, name, data)) for name in WORKLOADS],
                      how="vertical_relaxed")
    # The driver starts ready requests in (arrival_s, request_id) order; the plain
    # path submits in the same order.
    frame = frame.sort("request_id")
    if limit is not None:
        frame = frame.head(limit)
    frame = frame.with_columns(
        pl.col("request_id").alias("conversation_id"),
        pl.lit(0, dtype=pl.Int32).alias("turn_index"),
        pl.lit(0.0).alias("arrival_s"),
        pl.lit(0.0).alias("think_time_s"),
    )
    return check_request_stream(frame, MAX_MODEL_LEN, "script").frame


def run_plain(llm, prompts, scripts) -> tuple[float, list]:
    params = [simulator_params("script", len(p), s) for p, s in zip(prompts, scripts)]
    inputs = [{"prompt_token_ids": p} for p in prompts]
    t0 = time.perf_counter()
    outs = llm.generate(inputs, params, use_tqdm=False)
    return time.perf_counter() - t0, outs


def run_instrumented(engine, stream, progress: bool):
    t0 = time.perf_counter()
    res = drive(engine, stream, mode="script", progress=progress, desc="instrumented")
    return time.perf_counter() - t0, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--requests", type=int, default=None, help="cap on the number of requests")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per path (alternating)")
    ap.add_argument("--scale", type=int, default=1,
                    help="multiply the workloads' default number of conversations")
    ap.add_argument("--warmup-requests", type=int, default=None,
                    help="requests in each engine's untimed warm-up run (default: all)")
    ap.add_argument("--no-progress", action="store_true", help="drive without the progress bar")
    args = ap.parse_args(argv)
    if os.environ.get("PYTHONHASHSEED") != "0":
        print("note: PYTHONHASHSEED is not 0", file=sys.stderr)

    stream = request_set(args.requests, args.scale)
    rows = stream.select("request_id", "prompt_token_ids", "scripted_output_token_ids").to_dicts()
    ids = [r["request_id"] for r in rows]
    prompts = [list(r["prompt_token_ids"]) for r in rows]
    scripts = [list(r["scripted_output_token_ids"]) for r in rows]
    expected = dict(zip(ids, scripts))
    prompt_tokens = sum(len(p) for p in prompts)
    output_tokens = sum(len(s) for s in scripts)
    print(f"requests: {len(rows)} ({', '.join(WORKLOADS)}; script mode, all submitted at once), "
          f"prompt tokens {prompt_tokens}, output tokens {output_tokens}, block size {args.block_size}")

    mismatches: list[str] = []
    with tempfile.TemporaryDirectory(prefix="engine_overhead_") as tmp:
        model_dir = build_model_dir(os.path.join(tmp, "tiny"), "tiny", 0, n_positions=MAX_MODEL_LEN)
        spec = EngineSpec.from_config(EngineConfig(max_model_len=MAX_MODEL_LEN), model_dir,
                                      args.block_size)
        plain = build_engine(spec, instrument=False)
        inst = build_engine(spec)

        # Warm-up: untimed runs through each path (by default the whole set, so
        # that the first timed run does not pay for first-seen batch shapes),
        # then every timed run starts from an emptied prefix cache.
        warm = len(rows) if args.warmup_requests is None else min(args.warmup_requests, len(rows))
        run_plain(plain.llm, prompts[:warm], scripts[:warm])
        run_instrumented(inst, stream.head(warm), progress=False)

        times = {"plain": [], "instrumented": []}
        hits = {"plain": [], "instrumented": []}
        driver_stats = []
        for rep in range(args.repeats):
            if not plain.llm.reset_prefix_cache():
                raise RuntimeError("plain engine refused to reset its prefix cache")
            wall, outs = run_plain(plain.llm, prompts, scripts)
            times["plain"].append(wall)
            hits["plain"].append(sum(int(o.num_cached_tokens or 0) for o in outs) / prompt_tokens)
            for rid, out in zip(ids, outs):
                if list(out.outputs[0].token_ids) != expected[rid]:
                    mismatches.append(f"plain rep {rep}: {rid}")

            inst.reset()
            wall, res = run_instrumented(inst, stream, progress=not args.no_progress)
            times["instrumented"].append(wall)
            hits["instrumented"].append(res.stats["hit_rate"])
            driver_stats.append(res.stats)
            got = dict(zip(res.requests["request_id"].to_list(), res.requests["output_token_ids"].to_list()))
            if set(got) != set(expected):
                mismatches.append(f"instrumented rep {rep}: {len(got)} of {len(expected)} requests finished")
            mismatches.extend(f"instrumented rep {rep}: {rid}" for rid in expected
                              if rid in got and list(got[rid]) != expected[rid])
            print(f"rep {rep}: plain {times['plain'][-1]:.3f} s, instrumented {wall:.3f} s "
                  f"(driver loop {res.stats['wall_s']:.3f} s, {res.stats['steps']} steps, "
                  f"{len(res.kv_events)} KV event rows)", flush=True)

    print()
    print(f"{'path':<14}{'wall s (median)':>16}{'prompt tok/s':>14}{'output tok/s':>14}{'hit rate':>10}")
    med = {}
    for path in ("plain", "instrumented"):
        med[path] = statistics.median(times[path])
        print(f"{path:<14}{med[path]:>16.3f}{prompt_tokens / med[path]:>14.0f}"
              f"{output_tokens / med[path]:>14.0f}{statistics.median(hits[path]):>10.4f}")
    best = {path: min(times[path]) for path in times}
    paired = statistics.median(i / p for p, i in zip(times["plain"], times["instrumented"]))
    print(f"(best runs: plain {best['plain']:.3f} s, instrumented {best['instrumented']:.3f} s, "
          f"ratio {best['instrumented'] / best['plain']:.2f}; median of the per-repetition ratios "
          f"{paired:.2f}. Other processes on the machine inflate single runs)")
    print(f"(instrumented: progress bar {'off' if args.no_progress else 'on'}; wall time of the "
          f"whole drive() call incl. building its result frames; all runs: "
          f"plain {[round(t, 3) for t in times['plain']]}, "
          f"instrumented {[round(t, 3) for t in times['instrumented']]})")
    if mismatches:
        print(f"OUTPUTS DIFFER from the scripts ({len(mismatches)}): {mismatches[:5]}")
    else:
        print(f"outputs: all {len(ids)} requests generated exactly their scripts on both paths "
              f"({args.repeats} runs each)")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) + 0.5:
        print(f"note: the machine is busy (1-min load average {load:.1f} on {os.cpu_count()} cores): "
              f"other processes compete for the cores and the times are unreliable; rerun when idle")
    ratio = med["instrumented"] / med["plain"]
    print(f"ratio instrumented/plain = {ratio:.2f} (target <= {TARGET:.2f})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
