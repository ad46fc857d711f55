"""Sampled hit-rate curve of a >= 100M-access synthetic trace vs exact.

    .venv/bin/python bench/sampled_curve.py [--requests 3000000] [--rate 0.01] [--seed 1]
                                            [--hot-share 0.0005]

Two fresh processes run over the same seeded stream (replay/synthetic.py's
`synthetic_block_stream`, generated in chunks, never one frame):
- `sampled`: keeps the sampled requests chunk by chunk (sampling.py: hot
  head blocks from the first chunk kept for every request, the rest keyed
  by the request's first non-hot block) in preallocated compact arrays,
  then one weighted stack-distance pass that gives both semantics
  (sampling.weighted_lru_curves, no distance per access stored); prints its
  time and peak RSS (target < 2 GiB);
- `exact`: holds the whole id stream (int32) and counts block-LRU and
  plain-LRU prefix hits at the same 20 capacities in one Fenwick pass
  (curves.lru_hits_at), without a distance per access.
Prints the mean absolute error of the sampled curve at 20 capacities (target
< 0.01 at 1% sampling) for both semantics, and `MISSED: ...` with exit
status 1 when the MAE or peak-memory target is missed. Times are printed as
wall and CPU seconds (the machine may be shared); nothing is asserted on time.
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
from prefix_study.replay.sampling import HOT_SHARE, hot_blocks, sample_rows, weighted_lru_curves
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_block_stream


def config(args) -> SyntheticTraceConfig:
    return SyntheticTraceConfig(num_requests=args.requests, seed=args.seed)


def flags_of(lengths: np.ndarray, total: int) -> np.ndarray:
    flags = np.zeros(total, dtype=np.uint8)
    flags[np.cumsum(lengths) - lengths] = REQUEST_START
    return flags


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Rows:
    """Kept rows in preallocated arrays that grow by half when full (no list
    of per-chunk pieces to concatenate at the end)."""

    def __init__(self, capacity: int):
        self.n = 0
        self.ids = np.empty(capacity, np.int32)  # chain ids of the stream (checked < 2^31)
        self.flags = np.empty(capacity, np.uint8)
        self.probability = np.empty(capacity, np.float32)
        self.key = np.empty(capacity, np.uint64)  # sampling key (0 on hot rows)

    def append(self, ids, flags, probability, key) -> None:
        m = ids.shape[0]
        if self.n + m > self.ids.shape[0]:
            size = max(self.n + m, self.ids.shape[0] * 3 // 2)
            for name in ("ids", "flags", "probability", "key"):
                old = getattr(self, name)
                new = np.empty(size, old.dtype)
                new[:self.n] = old[:self.n]
                setattr(self, name, new)
        if m and int(ids.max()) >= 2**31:
            raise OverflowError("chain ids beyond int32: use int64 rows")
        sl = slice(self.n, self.n + m)
        self.ids[sl], self.flags[sl], self.probability[sl], self.key[sl] = ids, flags, probability, key
        self.n += m


def run_sampled(args) -> dict:
    from tqdm import tqdm

    t0, c0 = time.perf_counter(), time.process_time()
    rows = Rows(1 << 20)
    accesses = 0
    hot = None
    chunks = -(-args.requests // args.chunk)
    for ids, lengths in tqdm(synthetic_block_stream(config(args), args.chunk), total=chunks,
                             desc="sampled", file=sys.stderr):
        if hot is None:  # hot heads from the first chunk (the stream is stationary)
            hot = hot_blocks(ids, lengths, args.hot_share)
        keep, p, k = sample_rows(ids, lengths, args.rate, hot, args.seed)
        rows.append(ids[keep], flags_of(lengths, ids.shape[0])[keep], p, k)
        accesses += ids.shape[0]
        del ids, lengths, keep, p, k
    gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
    n = rows.n
    t1, c1 = time.perf_counter(), time.process_time()
    block, prefix = weighted_lru_curves(rows.ids[:n], rows.flags[:n], rows.probability[:n], rows.key[:n],
                                        np.array(args.capacities), tail_first=False)
    return {"accesses": accesses, "sampled_accesses": int(n), "hot": int(hot.shape[0]),
            "hot_rows": int(np.count_nonzero(rows.probability[:n] >= 1)),
            "generate_and_sample_s": gen_s, "generate_and_sample_cpu_s": gen_cpu,
            "curve_s": time.perf_counter() - t1, "curve_cpu_s": time.process_time() - c1,
            "total_s": time.perf_counter() - t0, "total_cpu_s": time.process_time() - c0,
            "peak_gib": peak_gib(), "block": block.tolist(), "prefix": prefix.tolist()}


def run_exact(args) -> dict:
    from tqdm import tqdm

    t0, c0 = time.perf_counter(), time.process_time()
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
    gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
    t1, c1 = time.perf_counter(), time.process_time()
    block, prefix = lru_hits_at(ids, flags, int(ids.max()) + 1, np.array(args.capacities, dtype=np.int64))
    n = ids.shape[0]
    return {"accesses": int(n), "distinct": int(np.unique(ids).shape[0]) if args.count_distinct else None,
            "generate_s": gen_s, "generate_cpu_s": gen_cpu, "curve_s": time.perf_counter() - t1,
            "curve_cpu_s": time.process_time() - c1, "peak_gib": peak_gib(),
            "block": (block / n).tolist(), "prefix": (prefix / n).tolist()}


#: Targets of issue 14.
MAX_MAE = 0.01
MAX_PEAK_GIB = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3_000_000)
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hot-share", type=float, default=HOT_SHARE)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--part", choices=["sampled", "exact"], default=None)
    ap.add_argument("--count-distinct", action="store_true")
    ap.add_argument("--capacities", type=int, nargs="*",
                    default=np.unique(np.geomspace(10_000, 20_000_000, 20).astype(int)).tolist())
    args = ap.parse_args()
    if args.part:
        out = run_sampled(args) if args.part == "sampled" else run_exact(args)
        print(json.dumps(out))
        return 0
    results = {}
    for part in ("sampled", "exact"):
        cmd = [sys.executable, __file__, "--part", part, "--requests", str(args.requests), "--rate",
               str(args.rate), "--seed", str(args.seed), "--hot-share", str(args.hot_share), "--chunk",
               str(args.chunk), "--capacities", *map(str, args.capacities)]
        results[part] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    s, e = results["sampled"], results["exact"]
    print(f"trace: {e['accesses']:,} block accesses ({args.requests:,} requests, seed {args.seed}), generated "
          f"in chunks of {args.chunk:,} requests")
    print(f"sampling rate {args.rate:.2%}, hot_share {args.hot_share:g} ({s['hot']} hot head blocks kept for "
          f"every request): {s['sampled_accesses']:,} accesses kept ({s['hot_rows']:,} hot, "
          f"{s['sampled_accesses'] - s['hot_rows']:,} sampled)")
    print(f"  sampled curve: {s['total_s']:.1f} s wall, {s['total_cpu_s']:.1f} s CPU "
          f"({s['generate_and_sample_cpu_s']:.1f} s CPU generating and sampling the stream, "
          f"{s['curve_cpu_s']:.2f} s CPU for both curves); peak RSS {s['peak_gib']:.2f} GiB "
          f"(target < {MAX_PEAK_GIB} GiB)")
    print(f"  exact (20 capacities, one Fenwick pass over all {e['accesses']:,} accesses): "
          f"{e['curve_cpu_s']:.1f} s CPU + {e['generate_cpu_s']:.1f} s CPU generating; "
          f"peak RSS {e['peak_gib']:.2f} GiB")
    print(f"  sampled / exact CPU time (same run): {s['total_cpu_s'] / (e['curve_cpu_s'] + e['generate_cpu_s']):.2f}")
    print(f"\n{'capacity':>10} {'block exact':>12} {'sampled':>8} {'prefix exact':>13} {'sampled':>8}")
    for c, be, bs, pe, ps in zip(args.capacities, e["block"], s["block"], e["prefix"], s["prefix"]):
        print(f"{c:>10,} {be:>12.4f} {bs:>8.4f} {pe:>13.4f} {ps:>8.4f}")
    missed = []
    for sem in ("block", "prefix"):
        mae = float(np.mean(np.abs(np.array(s[sem]) - np.array(e[sem]))))
        ok = mae < MAX_MAE
        print(f"MAE {sem:6} (lru{'_plain' if sem == 'prefix' else ''}) at {len(args.capacities)} capacities: "
              f"{mae:.4f} (target < {MAX_MAE}) {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(f"MAE {sem} {mae:.4f}")
    if s["peak_gib"] >= MAX_PEAK_GIB:
        missed.append(f"peak RSS {s['peak_gib']:.2f} GiB")
    if e["accesses"] < 100_000_000:
        print(f"note: {e['accesses']:,} accesses is below the 100M of the target (--requests)")
    if missed:
        print("MISSED: " + "; ".join(missed))
        return 1
    print(f"all targets met (MAE < {MAX_MAE} in both semantics, peak RSS < {MAX_PEAK_GIB} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
