"""Sampled vs exact hit-rate curves on a real trace file (default: the
Mooncake FAST'25 conversation trace).

    .venv/bin/python bench/sampled_trace.py [path] [--format mooncake] [--rates 0.1 0.01] [--seeds 0 1 2 3]

Samples the trace frame (replay/sampling.py: hot heads kept, whole requests
by their first non-hot block, or whole conversations with --by conversation)
at each rate and seed, and prints the mean absolute error of the estimated
curve against the exact one-pass curve at 20 geometric capacities, for
block LRU, plain-LRU prefix and vLLM's tail-first prefix LRU.
"""

from __future__ import annotations

import argparse

import numpy as np

from prefix_study.replay import encode_trace
from prefix_study.replay.curves import hit_curve
from prefix_study.replay.sampling import HOT_SHARE, sample_frame, sampled_hit_rates
from prefix_study.traces.importers import import_trace

CURVES = (("lru", "block"), ("lru_plain", "prefix"), ("lru", "prefix"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default="../shared/data/mooncake/conversation_trace.jsonl")
    ap.add_argument("--format", default="mooncake")
    ap.add_argument("--rates", type=float, nargs="*", default=[0.1, 0.01])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    ap.add_argument("--by", choices=["block", "conversation"], default="block")
    ap.add_argument("--hot-share", type=float, default=HOT_SHARE)
    args = ap.parse_args()
    frame, report = import_trace(args.format, args.path, args.format)
    trace = encode_trace(frame)
    caps = np.unique(np.geomspace(10, trace.num_ids, 20).astype(int))
    print(f"{args.path}: {trace.accesses:,} accesses, {report['requests']:,} requests, {trace.num_ids:,} distinct "
          f"blocks; {len(caps)} capacities {caps[0]}..{caps[-1]}; key {args.by}, hot_share {args.hot_share:g}")
    exact = {c: hit_curve(trace, *c)[caps] / trace.num_lookups for c in CURVES}
    for rate in args.rates:
        for seed in args.seeds:
            sample = sample_frame(frame, rate, by=args.by, seed=seed, hot_share=args.hot_share)
            kept = sample.frame.height
            maes = [float(np.abs(sampled_hit_rates(sample, pol, sem, caps) - exact[pol, sem]).mean())
                    for pol, sem in CURVES]
            print(f"rate {rate:>5.2%} seed {seed}: {kept:,} rows kept ({np.count_nonzero(sample.probability >= 1):,} "
                  f"hot); MAE " + ", ".join(f"{p}/{s} {m:.4f}" for (p, s), m in zip(CURVES, maes)))


if __name__ == "__main__":
    main()
