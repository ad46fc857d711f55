"""Sampled hit-rate curve of a >= 100M-access synthetic trace vs exact.

    .venv/bin/python bench/sampled_curve.py [--requests 3000000] [--rate 0.01] [--seed 1]

Two fresh processes run over the same seeded stream (replay/synthetic.py's
`synthetic_block_stream`, generated in chunks, never one frame):
- `sampled`: keeps the sampled requests chunk by chunk (sampling.py: hot
  head blocks from the first chunk kept for every request, the rest keyed
  by the request's first non-hot block), then one weighted stack-distance
  pass per semantics; prints its time and peak RSS (target < 2 GiB);
- `exact`: holds the whole id stream (int32) and counts block-LRU and
  plain-LRU prefix hits at the same 20 capacities in one Fenwick pass
  (curves.lru_hits_at), without a distance per access.
Prints the mean absolute error of the sampled curve at 20 capacities (target
< 0.01 at 1% sampling) for both semantics. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from prefix_study.replay.curves import lru_hits_at
from prefix_study.replay.kernels._common import REQUEST_START
from prefix_study.replay.sampling import hot_blocks, sample_rows, weighted_hit_rates
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_block_stream
from prefix_study.replay.trace import BlockTrace, dense_block_ids


def config(args) -> SyntheticTraceConfig:
    return SyntheticTraceConfig(num_requests=args.requests, seed=args.seed)


def flags_of(lengths: np.ndarray, total: int) -> np.ndarray:
    flags = np.zeros(total, dtype=np.uint8)
    flags[np.cumsum(lengths) - lengths] = REQUEST_START
    return flags


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_sampled(args) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    kept_ids, kept_flags, kept_p, kept_k = [], [], [], []
    accesses = 0
    hot = None
    chunks = -(-args.requests // args.chunk)
    for ids, lengths in tqdm(synthetic_block_stream(config(args), args.chunk), total=chunks,
                             desc="sampled", file=sys.stderr):
        if hot is None:  # hot heads from the first chunk (the stream is stationary)
            hot = hot_blocks(ids, lengths)
        keep, p, k = sample_rows(ids, lengths, args.rate, hot, args.seed)
        kept_k.append(k)
        kept_ids.append(ids[keep])
        kept_flags.append(flags_of(lengths, ids.shape[0])[keep])
        kept_p.append(p.astype(np.float32))
        accesses += ids.shape[0]
    gen_s = time.perf_counter() - t0
    raw = np.concatenate(kept_ids).view(np.uint64)
    del kept_ids
    ids, num_ids = dense_block_ids(raw)
    del raw
    trace = BlockTrace(ids=ids, flags=np.concatenate(kept_flags), num_ids=int(num_ids),
                       workload=np.zeros(0, np.int16), workload_names=("synthetic",))
    del kept_flags
    prob = np.concatenate(kept_p)
    del kept_p
    key = np.concatenate(kept_k)
    del kept_k
    caps = np.array(args.capacities)
    t1 = time.perf_counter()
    block = weighted_hit_rates(trace, prob, args.rate, "lru", "block", caps, key)
    prefix = weighted_hit_rates(trace, prob, args.rate, "lru_plain", "prefix", caps, key)
    curve_s = time.perf_counter() - t1
    return {"accesses": accesses, "sampled_accesses": int(trace.accesses), "hot": int(hot.shape[0]),
            "generate_and_sample_s": gen_s, "curve_s": curve_s, "total_s": time.perf_counter() - t0,
            "peak_gib": peak_gib(), "block": block.tolist(), "prefix": prefix.tolist()}


def run_exact(args) -> dict:
    from tqdm import tqdm

    t0 = time.perf_counter()
    parts, lens = [], []
    chunks = -(-args.requests // args.chunk)
    for ids, lengths in tqdm(synthetic_block_stream(config(args), args.chunk), total=chunks,
                             desc="exact", file=sys.stderr):
        parts.append(ids.astype(np.int32))
        lens.append(lengths)
    ids = np.concatenate(parts)
    del parts
    lengths = np.concatenate(lens)
    flags = flags_of(lengths, ids.shape[0])
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    block, prefix = lru_hits_at(ids, flags, int(ids.max()) + 1, np.array(args.capacities, dtype=np.int64))
    n = ids.shape[0]
    return {"accesses": int(n), "distinct": int(np.unique(ids).shape[0]) if args.count_distinct else None,
            "generate_s": gen_s, "curve_s": time.perf_counter() - t1, "peak_gib": peak_gib(),
            "block": (block / n).tolist(), "prefix": (prefix / n).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3_000_000)
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--part", choices=["sampled", "exact"], default=None)
    ap.add_argument("--count-distinct", action="store_true")
    ap.add_argument("--capacities", type=int, nargs="*",
                    default=np.unique(np.geomspace(10_000, 20_000_000, 20).astype(int)).tolist())
    args = ap.parse_args()
    if args.part:
        out = run_sampled(args) if args.part == "sampled" else run_exact(args)
        print(json.dumps(out))
        return
    results = {}
    for part in ("sampled", "exact"):
        cmd = [sys.executable, __file__, "--part", part, "--requests", str(args.requests), "--rate",
               str(args.rate), "--seed", str(args.seed), "--chunk", str(args.chunk), "--capacities",
               *map(str, args.capacities)]
        results[part] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    s, e = results["sampled"], results["exact"]
    print(f"trace: {e['accesses']:,} block accesses ({args.requests:,} requests), generated in chunks of "
          f"{args.chunk:,} requests")
    print(f"sampled at {args.rate:.2%} ({s['hot']} hot head blocks kept for every request): "
          f"{s['sampled_accesses']:,} accesses kept")
    print(f"  sampled curve: {s['total_s']:.1f} s total ({s['generate_and_sample_s']:.1f} s generating and "
          f"sampling the stream, {s['curve_s']:.2f} s for both curves); peak RSS {s['peak_gib']:.2f} GiB "
          f"(target < 2 GiB)")
    print(f"  exact (20 capacities, one Fenwick pass over all {e['accesses']:,} accesses): "
          f"{e['curve_s']:.1f} s + {e['generate_s']:.1f} s generating; peak RSS {e['peak_gib']:.2f} GiB")
    print(f"\n{'capacity':>10} {'block exact':>12} {'sampled':>8} {'prefix exact':>13} {'sampled':>8}")
    for c, be, bs, pe, ps in zip(args.capacities, e["block"], s["block"], e["prefix"], s["prefix"]):
        print(f"{c:>10,} {be:>12.4f} {bs:>8.4f} {pe:>13.4f} {ps:>8.4f}")
    for sem in ("block", "prefix"):
        mae = float(np.mean(np.abs(np.array(s[sem]) - np.array(e[sem]))))
        print(f"MAE {sem:6} (lru{'_plain' if sem == 'prefix' else ''}) at {len(args.capacities)} capacities: "
              f"{mae:.4f} (target < 0.01)")


if __name__ == "__main__":
    main()
