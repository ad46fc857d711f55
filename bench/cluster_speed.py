"""Cluster simulation speed on the Mooncake conversation trace.

Every router (basic ones, and the prefix-aware ones in both variants) routes
the 12,031 requests of Mooncake's conversation trace (512-token blocks) to 16
replicas; target: under 60 s in total on this machine with `lru` replicas.
Prints requests/s per router, and as the baseline measured in the same run
the single-instance `prefix` LRU replay (numba kernel) over the same trace.
Further replica policies (`--policies`, default also `arc`) repeat every
router and print their time as a ratio of the `lru` run's.

    PYTHONPATH=src python bench/cluster_speed.py [--trace PATH] [--replicas 16] [--policies lru arc]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from omegaconf import OmegaConf

from prefix_study.cluster.costs import cost_model
from prefix_study.cluster.requests import requests_from_trace
from prefix_study.cluster.routers import router_labels, router_names
from prefix_study.cluster.simulate import run_metrics, simulate
from prefix_study.cluster.stage import external_lengths
from prefix_study.config.compose import compose_config
from prefix_study.replay import encode_trace, replay_hit_mask
from prefix_study.traces.importers import import_trace

TARGET_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="/work/shared/data/mooncake/conversation_trace.jsonl")
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=1024, help="blocks of 512 tokens per replica")
    ap.add_argument("--policies", nargs="+", default=["lru", "arc"], help="replica policies (lru first)")
    args = ap.parse_args()
    cfg = compose_config(["+workload@workloads.mooncake=mooncake", f"workloads.mooncake.trace_path={args.trace}",
                          f"cluster.capacity={args.capacity}"])
    t0 = time.perf_counter()
    frame, report = import_trace("mooncake", args.trace, "mooncake")
    reqs = requests_from_trace(frame, 512, external_lengths(cfg.workloads.mooncake, "mooncake"))
    load_s = time.perf_counter() - t0
    print(f"{len(reqs)} requests, {reqs.lookup_blocks} block lookups, load {load_s:.2f} s; "
          f"{args.replicas} replicas x {args.capacity} blocks; cost model {type(cost_model(cfg)).__name__}")

    trace = encode_trace(frame)
    replay_hit_mask(trace, "lru", args.capacity, "prefix")  # compile
    t0 = time.perf_counter()
    hits = replay_hit_mask(trace, "lru", args.capacity, "prefix")
    base_s = time.perf_counter() - t0
    base_rps = len(reqs) / base_s
    print(f"baseline: single-instance prefix LRU replay (numba): {base_rps:,.0f} requests/s, "
          f"hit rate {(hits & trace.looked_up).sum() / trace.num_lookups:.3f}")

    params = OmegaConf.to_container(cfg.cluster.router, resolve=True)
    cost = cost_model(cfg)
    policies = ["lru"] + [p for p in args.policies if p != "lru"]
    totals = {}
    for policy in policies:
        total = cpu_total = 0.0
        print(f"\nreplica policy {policy}")
        print(f"{'router':32s} {'req/s':>9s} {'seconds':>8s} {'cpu s':>7s} {'vs replay':>9s} {'hit rate':>8s} "
              f"{'TTFT p90':>9s}")
        for router, variant in router_labels(router_names(), ["precise", "approximate"]):
            t0, c0 = time.perf_counter(), time.process_time()
            run = simulate(reqs, args.replicas, router, variant, params.get(router, {}), policy,
                           args.capacity, cost, int(cfg.cluster.max_batch))
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            total += dt
            cpu_total += cpu
            m = run_metrics(run)
            label = f"{router}/{variant}" if variant else router
            print(f"{label:32s} {len(reqs) / dt:9,.0f} {dt:8.2f} {cpu:7.2f} {len(reqs) / dt / base_rps:9.4f} "
                  f"{m['hit_rate']:8.3f} {m['ttft_p90_s']:9.3f}")
        totals[policy] = (total, cpu_total)
        if policy == "lru":
            print(f"total {total:.1f} s wall ({cpu_total:.1f} s CPU; wall exceeds CPU on a machine shared with "
                  f"other jobs) for every router; target < {TARGET_S:.0f} s: ratio {total / TARGET_S:.2f} "
                  f"of the budget{'' if total < TARGET_S else '  -- OVER BUDGET'}")
        else:
            print(f"total {total:.1f} s wall ({cpu_total:.1f} s CPU) for every router: "
                  f"{cpu_total / totals['lru'][1]:.2f} x the lru run's CPU time")
    assert np.isfinite(total)


if __name__ == "__main__":
    main()
