"""The closing-note table of issue 18: what a DRAM tier below 1 GiB of GPU memory serves.

For the default mix (the ShareGPT workloads' traces at mix.block_size,
interleaved as the mixed stage does; from a finished default run) and the
Mooncake conversation trace (512-token blocks): GPU memory of --gpu-gib GiB
(vLLM's LRU free queue) and one DRAM tier below it (vllm_cpu preset: PCIe of
the config's GPU) at each of --dram-gib, with LRU, ARC and S3-FIFO in DRAM and
write_through, write_through_selective (after 2 hits) and write_back (GPU
memory's evictions); tokens served per tier and TTFT p90 (the tiers stage's
measure: cost model prefill of the uncached tokens + load time, request
alone). Sizes are GiB of the config's model (Llama-3.1-8B on an H100 by default).

Then the load policies on a slow tier (--slow-gb-s, e.g. a file-backend L3):
`always` against `cost` against DRAM 0, and the break-even bandwidth of an
8k-token prefix beside SGLang issue #26305's published point.

    PYTHONPATH=src python bench/tier_table.py [--traces-dir results/traces/<h>] [--workloads-dir results/workloads/<h>]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

POLICIES = ("lru", "arc", "s3fifo")
WRITES = ("write_through", "write_through_selective", "write_back")
#: SGLang issue #26305 (https://github.com/sgl-project/sglang/issues/26305): an
#: 8k-token prompt, TTFT 2.45 s with a file-backend L3 hit, 1.73 s with no cache.
SGLANG_26305 = {"prefix_tokens": 8192, "l3_hit_ttft_s": 2.45, "no_cache_ttft_s": 1.73}


def main() -> None:
    import numpy as np
    import polars as pl

    from prefix_study.config.compose import compose_config
    from prefix_study.cost import CostModel
    from prefix_study.pipeline import PipelinePaths
    from prefix_study.replay.trace import encode_trace
    from prefix_study.tiers.break_even import break_even_bytes_s, recompute_s
    from prefix_study.tiers.replay import tier_replay
    from prefix_study.tiers.spec import hierarchy
    from prefix_study.tiers.stage import prompt_tokens, request_prompts, summarize, traces_of
    from prefix_study.traces.importers import import_trace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces-dir", type=Path, default=None, help="a default run's traces stage directory")
    ap.add_argument("--workloads-dir", type=Path, default=None, help="its workloads stage directory")
    ap.add_argument("--mooncake", default="/work/shared/data/mooncake/conversation_trace.jsonl")
    ap.add_argument("--gpu-gib", type=float, default=1.0)
    ap.add_argument("--dram-gib", type=float, nargs="+", default=[0, 4, 16, 64])
    ap.add_argument("--slow-gb-s", type=float, default=1.0)
    args = ap.parse_args()

    cfg = compose_config(["tiers=vllm_cpu", "tiers.tiers.0.capacity=" + str(args.gpu_gib),
                          "tiers.tiers.0.capacity_unit=gib", "tiers.tiers.0.policy=lru"])
    cost = CostModel.from_config(cfg)
    paths = PipelinePaths(compose_config())
    tdir = args.traces_dir or paths.stage("traces")
    wdir = args.workloads_dir or paths.stage("workloads")
    bs = int(cfg.mix.block_size)
    names = list(paths.engine_workloads)
    traces = {w: tdir / w / f"b{bs}.parquet" for w in names}
    prompts = prompt_tokens({w: wdir / f"{w}.parquet" for w in names})
    mix = next((bs, f) for n, _, f in traces_of(cfg, traces, {}) if n == "mixed")
    mooncake, _ = import_trace("mooncake", args.mooncake, "mooncake")
    runs = {"default mix": mix, "mooncake conversation": (512, mooncake)}

    print(f"GPU memory {args.gpu_gib} GiB of {cost.model.name} KV on {cost.num_gpus} x {cost.hardware.name} "
          "(LRU, vLLM's free queue); one DRAM tier below it over PCIe; load_policy always.\n")
    print("| trace | DRAM GiB | DRAM policy | write policy | GPU tokens | DRAM tokens | recomputed | "
          "DRAM written GiB | TTFT p90 (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    encoded = {}
    t0 = time.process_time()
    for label, (block_size, frame) in runs.items():
        trace = encode_trace(frame)
        prompt = request_prompts(frame, trace, prompts, block_size)
        h = hierarchy(cfg.tiers, cost.hardware, cost.model, block_size)
        encoded[label] = (trace, prompt, h)
        for gib in args.dram_gib:
            cap = int(gib * 2**30 // h.block_bytes)
            combos = [(p, w) for p in POLICIES for w in WRITES] if cap else [("-", "-")]
            for policy, write in combos:
                dram = replace(h.lower[0], capacity_blocks=cap, policy=policy if cap else "lru",
                               write_policy=write if cap else "write_through")
                res = tier_replay(trace, replace(h, lower=(dram,)), cost_model=cost)
                row = summarize(res, prompt, cost, 1)
                print(f"| {label} | {gib:g} | {policy} | {write} | {row['gpu_tokens']:,} | {row['tier1_tokens']:,} | "
                      f"{row['recomputed_tokens']:,} | {row['tier1_write_bytes'] / 2**30:.2f} | "
                      f"{row['ttft_p90_s']:.4f} |", flush=True)
    print(f"\n(replays: {time.process_time() - t0:.1f} CPU s including compiles)\n")

    slow = args.slow_gb_s * 1e9
    print(f"Load policies on a slow DRAM-sized tier ({args.slow_gb_s:g} GB/s, e.g. a file backend; "
          f"{args.dram_gib[-1]:g} GiB, LRU, write_through):\n")
    print("| trace | load policy | GPU tokens | tier tokens | declined | recomputed | mean load s | "
          "TTFT p50 (s) | TTFT p90 (s) | TTFT mean (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, (trace, prompt, h) in encoded.items():
        cap = int(args.dram_gib[-1] * 2**30 // h.block_bytes)
        for load in ("none", "always", "cost"):
            dram = replace(h.lower[0], capacity_blocks=cap if load != "none" else 0, read_bytes_s=slow)
            hp = replace(h, lower=(dram,), load_policy="always" if load == "none" else load)
            res = tier_replay(trace, hp, cost_model=cost)
            row = summarize(res, prompt, cost, 1)
            cached = np.minimum(res.served_blocks.sum(axis=1) * h.block_size, np.maximum(prompt - 1, 0))
            mean = float(np.mean(cost.ttft_s(prompt, cached) + res.load_s))
            print(f"| {label} | {'DRAM 0 (GPU only)' if load == 'none' else load} | {row['gpu_tokens']:,} | "
                  f"{row['tier1_tokens']:,} | {row['declined_tokens']:,} | {row['recomputed_tokens']:,} | "
                  f"{row['load_s_mean']:.4f} | {row['ttft_p50_s']:.4f} | {row['ttft_p90_s']:.4f} | {mean:.4f} |")

    p = SGLANG_26305["prefix_tokens"]
    kv = p * cost.model.kv_bytes_per_token()
    rec = recompute_s(cost, p, bs)
    be = break_even_bytes_s(cost, p, bs)
    implied_load_bw = kv / SGLANG_26305["l3_hit_ttft_s"]
    implied_be = kv / SGLANG_26305["no_cache_ttft_s"]
    print(f"\nBreak-even for an {p}-token prefix of {cost.model.name} ({kv / 1e9:.2f} GB of KV) on "
          f"{cost.num_gpus} x {cost.hardware.name}: recompute {rec:.3f} s, break-even {be / 1e9:.2f} GB/s.")
    print(f"SGLang #26305 (model and GPU not given in issue 18): L3 hit {SGLANG_26305['l3_hit_ttft_s']} s vs "
          f"no cache {SGLANG_26305['no_cache_ttft_s']} s. Taking its no-cache TTFT as the recompute time and "
          f"the hit's TTFT as load time, with {cost.model.name}'s KV size: the L3 delivered <= "
          f"{implied_load_bw / 1e9:.2f} GB/s and its break-even was {implied_be / 1e9:.2f} GB/s; "
          f"its recompute is {SGLANG_26305['no_cache_ttft_s'] / rec:.1f}x our model's, so our break-even "
          f"is that much higher.")
    print(pl.DataFrame({"source": ["this model", "SGLang #26305 (implied)"],
                        "recompute_s": [rec, SGLANG_26305["no_cache_ttft_s"]],
                        "break_even_gb_s": [be / 1e9, implied_be / 1e9]}))


if __name__ == "__main__":
    main()
