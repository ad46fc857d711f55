"""Whole hit-rate curves in one pass vs one replay, on the >= 5M-access trace
of bench/replay_speed.py.

    .venv/bin/python bench/curve_speed.py [--requests 150000] [--seed 1] [--checks 20]

Times, from the trace frame (encoding hash -> dense id included, as
replay_speed.py's "+encode"): the exact block-LRU curve at every capacity vs
one block-LRU replay at one capacity, and the same for the prefix curves
(plain-LRU recency, and vLLM's tail-first LRU) vs one prefix replay. Prints
the ratios (target <= 2) and kernel-only times, then checks each curve
against per-capacity replays at `--checks` random capacities (must be equal).
Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prefix_study.replay import encode_trace, replay
from prefix_study.replay.curves import hit_curve, lru_stack_distances
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace

REPLAY_CAPACITY = 16384


def best_of(fn, repeats: int = 3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=150_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checks", type=int, default=20)
    args = ap.parse_args()

    frame = synthetic_trace(SyntheticTraceConfig(num_requests=args.requests, seed=args.seed))
    small = encode_trace(frame.head(2000))  # load compiled kernels
    replay(small, "lru", 10, "block"), replay(small, "lru", 10, "prefix"), replay(small, "lru_plain", 10, "prefix")
    hit_curve(small, "lru", "block"), hit_curve(small, "lru", "prefix"), hit_curve(small, "lru_plain", "prefix")

    encode_s, trace = best_of(lambda: encode_trace(frame))
    n = trace.num_lookups
    print(f"trace: {trace.accesses:,} block accesses, {trace.num_requests:,} requests, "
          f"{trace.num_ids:,} distinct blocks; encode {encode_s:.3f} s")
    print(f"\n{'what':34} {'kernel s':>9} {'+encode s':>10} {'ratio+enc':>10} {'ratio kernel':>12}")
    rows = [
        ("block", "lru", "lru", "block"),
        ("prefix, plain-LRU recency", "lru_plain", "lru_plain", "prefix"),
        ("prefix, vLLM tail-first LRU", "lru", "lru", "prefix"),
    ]
    rng = np.random.default_rng(args.seed)
    checks = np.sort(rng.choice(np.arange(1, trace.num_ids + 1), size=args.checks, replace=False))
    for label, curve_policy, replay_policy, sem in rows:
        replay_s, _ = best_of(lambda: replay(trace, replay_policy, REPLAY_CAPACITY, sem))
        curve_s, curve = best_of(lambda: hit_curve(trace, curve_policy, sem))
        # From the frame: encode + kernel, measured end to end once more.
        t0 = time.perf_counter()
        hit_curve(encode_trace(frame), curve_policy, sem)
        curve_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        replay(encode_trace(frame), replay_policy, REPLAY_CAPACITY, sem)
        replay_full = time.perf_counter() - t0
        print(f"{'one replay (' + label + ')':34} {replay_s:>9.3f} {replay_full:>10.3f}")
        print(f"{'whole curve (' + label + ')':34} {curve_s:>9.3f} {curve_full:>10.3f} "
              f"{curve_full / replay_full:>10.2f} {curve_s / replay_s:>12.2f}")
        bad = [int(c) for c in checks if curve[c] != replay(trace, replay_policy, int(c), sem).hits]
        print(f"  equals per-capacity replays at {len(checks)} random capacities: "
              f"{'yes' if not bad else 'NO, differs at ' + str(bad)}; "
              f"hit rate at {REPLAY_CAPACITY}: {curve[REPLAY_CAPACITY] / n:.4f}")
    stack_s, _ = best_of(lambda: lru_stack_distances(trace.ids, trace.num_ids))
    print(f"\nstack distances alone (Fenwick pass): {stack_s:.3f} s "
          f"({trace.accesses / stack_s / 1e6:.1f} M accesses/s)")


if __name__ == "__main__":
    main()
