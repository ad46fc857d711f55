"""Cluster simulation speed on the Mooncake conversation trace, against the
release whose replicas ran Python caches (cluster/caches/, deleted since).

Every router (basic ones, and the prefix-aware ones in both variants) routes
the 12,031 requests of Mooncake's conversation trace (512-token blocks) to 16
replicas, with `lru` and `arc` replicas (`--policies`). The same driver (this
file, `--worker`) runs in subprocesses, one after the other: on this tree's
sources, on the baseline revision's (`git archive REV src`, default fe70618,
the last release with Python replica caches: the speed target) and on the
reference revision's (default 99d15df, the last one whose queues, routers
and cost model ran in Python per request: the results target; the baseline
cannot be, as the cost model that times the queues changed after it). Each
worker first warms up on 200 requests (numba compiles or loads its cache),
then times every run in CPU seconds. Prints the CPU times per run and in
total, the ratio to the baseline (target: >= 4x) and to the reference, and
checks that this tree and the reference give the same replica and hit count
for every request of every run (also the queue times: the digest covers
replica, hits, first-token and finish times).

    PYTHONPATH=src python bench/cluster_speed.py [--trace PATH] [--replicas 16] [--policies lru arc]
        [--baseline-rev fe70618] [--reference-rev 99d15df]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 4.0
REPO = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    from omegaconf import OmegaConf

    from prefix_study.cluster.costs import cost_model
    from prefix_study.cluster.requests import requests_from_trace
    from prefix_study.cluster.routers import router_labels, router_names
    from prefix_study.cluster.simulate import run_metrics, simulate
    from prefix_study.cluster.stage import external_lengths
    from prefix_study.config.compose import compose_config
    from prefix_study.traces.importers import import_trace

    cfg = compose_config(["+workload@workloads.mooncake=mooncake", f"workloads.mooncake.trace_path={args.trace}",
                          f"cluster.capacity={args.capacity}"])
    frame, _ = import_trace("mooncake", args.trace, "mooncake")
    lengths = external_lengths(cfg.workloads.mooncake, "mooncake")
    reqs = requests_from_trace(frame, 512, lengths)
    first = frame["request_id"].unique(maintain_order=True).head(200)
    warm = requests_from_trace(frame.filter(frame["request_id"].is_in(first)), 512, lengths)
    params = OmegaConf.to_container(cfg.cluster.router, resolve=True)
    cost = cost_model(cfg)
    labels = router_labels(router_names(), ["precise", "approximate"])
    for policy in args.policies:
        for router, variant in labels:  # compile (or load numba's cache) outside the timing
            simulate(warm, args.replicas, router, variant, params.get(router, {}), policy, args.capacity, cost,
                     int(cfg.cluster.max_batch))
        for router, variant in labels:
            c0 = time.process_time()
            run = simulate(reqs, args.replicas, router, variant, params.get(router, {}), policy, args.capacity,
                           cost, int(cfg.cluster.max_batch))
            cpu = time.process_time() - c0
            digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in (
                run.replica.astype(np.int32), run.hit_blocks.astype(np.int64), run.first_token_s, run.finish_s,
                run.replica_prefill_tokens.astype(np.int64)))).hexdigest()
            print(json.dumps({"policy": policy, "run": f"{router}/{variant}" if variant else router, "cpu_s": cpu,
                              "requests": len(reqs), "hit_rate": run_metrics(run)["hit_rate"],
                              "digest": digest}), flush=True)


def run_worker(src: Path, args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    cmd = [sys.executable, __file__, "--worker", "--trace", args.trace, "--replicas", str(args.replicas),
           "--capacity", str(args.capacity), "--policies", *args.policies]
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"worker on {src} failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {(r["policy"], r["run"]): r for r in rows}


def revision_src(rev: str, tmp: Path) -> Path:
    """`src` (and `conf`) of revision `rev`, extracted under tmp."""
    out = tmp / rev
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src", "conf"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="/work/shared/data/mooncake/conversation_trace.jsonl")
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=1024, help="blocks of 512 tokens per replica")
    ap.add_argument("--policies", nargs="+", default=["lru", "arc"], help="replica policies")
    ap.add_argument("--baseline-rev", default="fe70618", help="git revision with the Python replica caches")
    ap.add_argument("--reference-rev", default="99d15df",
                    help="git revision with the Python queues and routers (same results as this tree)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"baseline: {args.baseline_rev} (Python replica caches); reference: {args.reference_rev} (Python "
              f"queues and routers); new: {REPO / 'src'}; {args.replicas} replicas x {args.capacity} blocks",
              flush=True)
        new = run_worker(REPO / "src", args)
        old = run_worker(revision_src(args.baseline_rev, Path(tmp)), args)
        ref = run_worker(revision_src(args.reference_rev, Path(tmp)), args)
    print(f"{'policy':7s} {'run':32s} {'old cpu s':>9s} {'ref cpu s':>9s} {'new cpu s':>9s} {'ratio':>6s} "
          f"{'hit rate':>8s} same as ref")
    total_old = total_ref = total_new = 0.0
    same_all = set(old) == set(new) == set(ref)
    for key, o in old.items():
        n, f = new[key], ref[key]
        same = f["digest"] == n["digest"]
        same_all &= same
        total_old += o["cpu_s"]
        total_ref += f["cpu_s"]
        total_new += n["cpu_s"]
        print(f"{key[0]:7s} {key[1]:32s} {o['cpu_s']:9.2f} {f['cpu_s']:9.2f} {n['cpu_s']:9.2f} "
              f"{o['cpu_s'] / n['cpu_s']:6.1f} {n['hit_rate']:8.3f} {'yes' if same else 'NO'}")
    ratio = total_old / total_new
    print(f"total CPU: baseline {total_old:.1f} s, reference {total_ref:.1f} s, new {total_new:.1f} s: "
          f"{ratio:.2f}x faster than the baseline (target >= {TARGET_RATIO:.0f}x"
          f"{'' if ratio >= TARGET_RATIO else ': MISSED'}), {total_ref / total_new:.2f}x than the reference; "
          f"replica, hits and queue times of every request identical to the reference in every run: "
          f"{'yes' if same_all else 'NO'}")
    if not same_all:
        raise SystemExit("reference and new cluster runs differ")


if __name__ == "__main__":
    main()
