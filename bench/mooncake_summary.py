"""Import the real Mooncake FAST'25 conversation trace and summarise it.

    .venv/bin/python bench/mooncake_summary.py [path]

Prints requests, blocks (512 tokens), the infinite-cache hit rate and hit
rates of LRU (and the other policies) at a few capacities, both semantics.
"""

from __future__ import annotations

import sys
import time

from prefix_study.replay import encode_trace, infinite_cache_hits, policy_names, replay
from prefix_study.stats import reuse_statistics
from prefix_study.traces.importers import import_trace

DEFAULT = "../shared/data/mooncake/conversation_trace.jsonl"
CAPACITIES = (1_000, 4_000, 16_000, 64_000)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    t0 = time.perf_counter()
    frame, report = import_trace("mooncake", path, "mooncake")
    print(f"imported {path} in {time.perf_counter() - t0:.2f} s")
    print(f"requests {report['requests']:,}, blocks {report['blocks']:,}, distinct blocks "
          f"{report['distinct_blocks']:,}, skipped lines {report['skipped_lines']}")
    trace = encode_trace(frame)
    inf = infinite_cache_hits(trace)
    print(f"infinite-cache hit rate: {inf / trace.num_lookups:.4f}")
    row, _ = reuse_statistics(frame.lazy(), "mooncake", 512)
    print(f"reuse fraction per request: mean {row['reuse_fraction_mean']:.3f}, p50 {row['reuse_fraction_p50']:.3f}, "
          f"p90 {row['reuse_fraction_p90']:.3f}; requests with reuse {row['requests_with_reuse']:.3f}")
    print(f"hits per block: mean {row['hits_per_block_mean']:.2f}, p99 {row['hits_per_block_p99']:.0f}, "
          f"max {row['hits_per_block_max']}; never reused {row['blocks_never_reused']:.3f}")
    print(f"reuse gap: p50 {row['gap_s_p50']:.1f} s / {row['gap_requests_p50']:.0f} requests, "
          f"p90 {row['gap_s_p90']:.1f} s / {row['gap_requests_p90']:.0f} requests")
    print(f"\n{'policy':10} {'semantics':9} " + " ".join(f"{c:>8}" for c in CAPACITIES))
    for policy in policy_names():
        for sem in ("block", "prefix"):
            rates = [replay(trace, policy, c, sem).hit_rate for c in CAPACITIES]
            print(f"{policy:10} {sem:9} " + " ".join(f"{r:>8.4f}" for r in rates))


if __name__ == "__main__":
    main()
