"""Replay speed: our LRU/FIFO kernels vs libCacheSim on one >= 5M-access trace,
plus the peak memory of the statistics step on that trace.

    .venv/bin/python bench/replay_speed.py [--requests 150000] [--seed 1]

Prints accesses/s of both and the ratio ours / libCacheSim (target >= 1.0),
kernel-only and including our one-off trace encoding (hash -> dense id). The
libCacheSim side runs its C `process_trace` over an oracleGeneral binary file
(its fastest path; reading the file is part of its loop). Hit counts must agree
exactly. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from prefix_study.io import write_parquet
from prefix_study.replay import encode_trace, replay
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace

CAPACITIES = (1024, 16384, 131072)


def write_oracle_general(ids: np.ndarray, next_use: np.ndarray, path: Path) -> None:
    """libCacheSim's oracleGeneral format: <u4 time, <u8 id, <u4 size, <i8 next access>."""
    rec = np.zeros(ids.shape[0], dtype=np.dtype([("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")]))
    rec["t"] = np.arange(ids.shape[0]) // 1000
    rec["id"] = ids.astype(np.uint64) + 1
    rec["size"] = 1
    rec["next"] = np.where(next_use == np.iinfo(np.int64).max, -1, next_use)
    rec.tofile(path)


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def stats_peak_memory(trace_path: Path, out_dir: Path) -> float:
    """Peak RSS (GiB) of a fresh process running the statistics stage."""
    code = (
        "from prefix_study.stats import write_reuse_summary\n"
        f"write_reuse_summary({{('bench', 16): {str(trace_path)!r}}}, {str(out_dir / 'summary.parquet')!r}, "
        f"{str(out_dir / 'summary.md')!r})\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    print(f"statistics step: {time.perf_counter() - t0:.1f} s wall (incl. interpreter start)")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=150_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import libcachesim as lcs

    t0 = time.perf_counter()
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=args.requests, seed=args.seed))
    print(f"trace: {frame.height:,} block accesses, {args.requests:,} requests "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    encode_s, trace = best_of(lambda: encode_trace(frame))
    print(f"encode (hash -> dense id): {encode_s:.3f} s; {trace.num_ids:,} distinct blocks")
    replay(encode_trace(frame.head(1000)), "lru", 10, "block")  # load compiled kernels
    replay(encode_trace(frame.head(1000)), "fifo", 10, "block")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bin_path = tmp / "trace.oracleGeneral.bin"
        write_oracle_general(trace.ids, trace.next_use, bin_path)
        reader = lcs.TraceReader(str(bin_path), lcs.TraceType.ORACLE_GENERAL_TRACE)
        n = trace.accesses
        print(f"\n{'policy':6} {'capacity':>9} {'hit rate':>9} {'ours M/s':>9} {'+encode':>8} "
              f"{'lcs M/s':>8} {'ratio':>6} {'ratio+enc':>9}")
        ratios = []
        for policy, cls in (("lru", lcs.LRU), ("fifo", lcs.FIFO)):
            for cap in CAPACITIES:
                ours_s, res = best_of(lambda: replay(trace, policy, cap, "block"))
                lcs_s, miss = best_of(lambda: cls(cache_size=cap).process_trace(reader), repeats=2)
                lcs_hits = round(n * (1.0 - miss[0]))
                assert lcs_hits == res.hits, (policy, cap, lcs_hits, res.hits)
                ratio, ratio_enc = lcs_s / ours_s, lcs_s / (ours_s + encode_s)
                ratios.append(ratio_enc)
                print(f"{policy:6} {cap:>9} {res.hit_rate:>9.4f} {n / ours_s / 1e6:>9.1f} "
                      f"{n / (ours_s + encode_s) / 1e6:>8.1f} {n / lcs_s / 1e6:>8.1f} {ratio:>6.1f} {ratio_enc:>9.1f}")
        print(f"hit counts equal libCacheSim's: yes; worst ratio incl. encoding: {min(ratios):.1f}")

        print("\nprefix semantics (vLLM tail-first LRU vs plain LRU order vs block LRU):")
        for cap in CAPACITIES:
            b = replay(trace, "lru", cap, "block").hits
            p = replay(trace, "lru", cap, "prefix").hits
            q = replay(trace, "lru_plain", cap, "prefix").hits
            print(f"  capacity {cap:>7}: block-LRU {b / n:.4f}  prefix-plain-LRU {q / n:.4f}  "
                  f"prefix-vLLM-LRU {p / n:.4f}  (vLLM vs plain: {100 * (p - q) / max(q, 1):+.2f}% hits)")

        trace_path = tmp / "bench.parquet"
        write_parquet(frame, trace_path)
        del frame, trace
        peak = stats_peak_memory(trace_path, tmp)
        print(f"statistics step peak RSS: {peak:.2f} GiB (target < 2 GiB)")


if __name__ == "__main__":
    main()
