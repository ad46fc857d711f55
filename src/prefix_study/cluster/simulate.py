"""Event-driven simulation of N replicas behind a router.

Requests arrive in trace order. At each arrival every replica's queue is
advanced to the arrival time, the router picks a replica from what it can
see, the replica's cache (`cluster.policy`, cluster/replicas.py: the
policy's own numba `serve`, as in the replay stage) serves the
request (its hits become the prompt's cached tokens), and the request joins
the replica's queue, whose cost model decides when its first token and its
last token come. Load, queueing and
TTFT all come out of this; none is an input. Deterministic: the only
randomness is the routers' seeded generators.

The cache serves a request when it is routed, one request at a time per
replica (as the single-instance `prefix` replay and vLLM with
max_num_seqs=1 do); blocks of requests that run concurrently in a batch are
not pinned against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from prefix_study.cluster.queue import ReplicaQueues, advance, place
from prefix_study.cluster.replicas import ReplicaCaches
from prefix_study.cluster.tiered import TieredReplicaCaches
from prefix_study.cluster.requests import ClusterRequests
from prefix_study.cluster.routers import get_router
from prefix_study.cost import CostModel


@dataclass
class ClusterRun:
    """Per-request outcome of one simulation, plus per-replica totals."""

    replica: np.ndarray
    hit_blocks: np.ndarray
    lookup_blocks: np.ndarray
    cached_tokens: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    overrode: np.ndarray          # -1: router has no affinity, 0/1 otherwise
    off_best_prefix: np.ndarray   # a replica with a longer exact prefix match existed
    output_tokens: np.ndarray
    replica_prefill_tokens: np.ndarray
    replica_busy_s: np.ndarray
    # With tiers: blocks each tier served per request (GPU memory first) and the load time.
    tier_blocks: np.ndarray | None = None
    load_s: np.ndarray | None = None


def simulate(requests: ClusterRequests, num_replicas: int, router: str, variant: str | None,
             router_params: Mapping[str, Any], policy: str, capacity_blocks: int,
             cost: Any, max_batch: int, seed: int = 0, progress: bool = False,
             tiers: Any = None) -> ClusterRun:
    """Run one (router, replica count) configuration over `requests`; with
    `tiers` (a tiers.spec.Hierarchy) each replica has those tiers below GPU
    memory (cluster/tiered.py), and a request's first token also waits for its loads.

    Per request, three or four numba calls: the router's `choose`, the
    policy's `serve_and_look` (the chosen replica serves it, then every
    replica looks up the next request), `place` (queue.py: enqueue, advance
    every replica to the next arrival) and the router's `routed`."""
    if num_replicas < 1:
        raise ValueError(f"cluster.replicas: {num_replicas} is not a positive number of replicas")
    n = len(requests)
    arrival = np.asarray(requests.arrival_s, dtype=np.float64)
    late = np.flatnonzero(arrival[1:] < arrival[:-1])
    if late.size:
        i = int(late[0]) + 1
        raise ValueError(f"request {requests.request_id[i]!r} arrives at {arrival[i]} before the previous "
                         f"request ({arrival[i - 1]}): requests must come in arrival order")
    rt = get_router(router)(router_params, num_replicas, seed=seed, variant=variant,
                            capacity_blocks=capacity_blocks, block_size=requests.block_size)
    rstate = rt.state(requests)
    choose, routed = rt.choose, rt.routed
    # The stage's cost model (the config's model on its hardware) also
    # prices recomputes (cost_lru), as in the replay stage; a clock that
    # cannot (EngineClockCost, tests) leaves them to the stand-in.
    costs = cost if isinstance(cost, CostModel) else None
    caches = ReplicaCaches(requests.trace, policy, num_replicas, capacity_blocks, requests.max_request_blocks(),
                           costs, requests.block_size) if tiers is None \
        else TieredReplicaCaches(requests.trace, policy, num_replicas, capacity_blocks,
                                 requests.max_request_blocks(), tiers, costs, requests.block_size)
    queues = ReplicaQueues(cost, max_batch, num_replicas, requests.prompt_tokens, requests.output_tokens)
    q = queues.state
    serve_and_look = caches.serve_and_look
    # Per request: accesses start..end-1, and the next request's (none after the last).
    start, end = requests.start, requests.end
    next_start, next_end = start[1:] + [0], end[1:] + [0]
    arrival_s = arrival.tolist()
    next_arrival_s = arrival_s[1:] + [np.inf]
    # Per replica: leading blocks of request i (seen) and i + 1 (seen_next) it caches.
    seen, seen_next = np.zeros(num_replicas, dtype=np.int64), np.zeros(num_replicas, dtype=np.int64)
    sizes = np.zeros(num_replicas, dtype=np.int64)  # per replica: blocks it caches
    # Per request: replica, hit blocks, cached tokens, overrode, off best prefix.
    out = np.zeros((5, n), dtype=np.int64)
    bs = requests.block_size
    if n:
        advance(q, arrival_s[0])
        serve_and_look(-1, 0, 0, start[0], end[0], seen, sizes)
    for i in tqdm(range(n), desc=f"{rt.label} x{num_replicas}", unit="req", disable=not progress,
                  mininterval=0.5):
        t = arrival_s[i]
        r, flag = choose(rstate, q, seen, sizes, i, t)
        h = serve_and_look(r, start[i], end[i], next_start[i], next_end[i], seen_next, sizes)
        place(q, out, seen, i, r, flag, h, bs, t, next_arrival_s[i])
        if routed is not None:
            routed(rstate, i, r, t)
        seen, seen_next = seen_next, seen
    tiered = tiers is not None
    first_token_s, finish_s = queues.first_token_s.copy(), queues.finish_s.copy()
    if tiered:  # loads do not occupy the GPU: they delay the request's own tokens only
        first_token_s += caches.load_s
        finish_s += caches.load_s
    return ClusterRun(
        replica=out[0].astype(np.int32), hit_blocks=out[1], lookup_blocks=requests.lookup_array.copy(),
        cached_tokens=out[2], arrival_s=arrival, first_token_s=first_token_s,
        finish_s=finish_s, overrode=out[3].astype(np.int8),
        off_best_prefix=out[4].astype(np.bool_), output_tokens=np.asarray(requests.output_tokens, np.int64),
        replica_prefill_tokens=queues.prefill_tokens, replica_busy_s=queues.busy_s,
        tier_blocks=caches.served.copy() if tiered else None, load_s=caches.load_s.copy() if tiered else None,
    )


def run_metrics(run: ClusterRun) -> dict[str, Any]:
    """Cluster hit rate, load imbalance, TTFT percentiles, throughput, overrides."""
    lookups = int(run.lookup_blocks.sum())
    hit_blocks = int(run.hit_blocks.sum())
    ttft = run.first_token_s - run.arrival_s
    span = float(run.finish_s.max() - run.arrival_s.min()) if run.arrival_s.size else 0.0
    prefill = run.replica_prefill_tokens.astype(np.float64)
    has_affinity = run.overrode >= 0
    p50, p90, p99 = (np.percentile(ttft, [50, 90, 99]) if ttft.size else (0.0, 0.0, 0.0))
    return {
        "requests": int(run.replica.size),
        "lookup_blocks": lookups,
        "hit_blocks": hit_blocks,
        "hit_rate": hit_blocks / lookups if lookups else 0.0,
        "prefill_imbalance": float(prefill.max() / prefill.mean()) if prefill.sum() > 0 else 1.0,
        "ttft_p50_s": float(p50),
        "ttft_p90_s": float(p90),
        "ttft_p99_s": float(p99),
        "throughput_tok_s": float(run.output_tokens.sum() / span) if span > 0 else 0.0,
        "requests_per_s": float(run.replica.size / span) if span > 0 else 0.0,
        "affinity_override_rate": float(run.overrode[has_affinity].mean()) if has_affinity.any() else None,
        "off_best_prefix_rate": float(run.off_best_prefix.mean()) if run.replica.size else 0.0,
    }
