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

from prefix_study.cluster.queue import CostModelLike, ReplicaQueue
from prefix_study.cluster.replicas import ReplicaCaches
from prefix_study.cluster.tiered import TieredReplicaCaches
from prefix_study.cluster.requests import ClusterRequests
from prefix_study.cluster.routers import get_router
from prefix_study.cost import CostModel


class Cluster:
    """What routers see: the clock, replica queues and (precise) caches."""

    def __init__(self, requests: ClusterRequests, num_replicas: int, policy: str,
                 capacity_blocks: int, cost: CostModelLike, max_batch: int, tiers: Any = None):
        self.requests = requests
        self.num_replicas = int(num_replicas)
        self.capacity_blocks = int(capacity_blocks)
        n = len(requests)
        self.first_token_s = [0.0] * n
        self.finish_s = [0.0] * n
        # The stage's cost model (the config's model on its hardware) also
        # prices recomputes (cost_lru), as in the replay stage; a clock that
        # cannot (EngineClockCost, tests) leaves them to the stand-in.
        # tiers (a tiers.spec.Hierarchy): KV tiers below each replica's GPU memory (cluster/tiered.py).
        costs = cost if isinstance(cost, CostModel) else None
        self.caches = ReplicaCaches(requests.trace, policy, num_replicas, capacity_blocks,
                                    requests.max_request_blocks(), costs, requests.block_size) if tiers is None \
            else TieredReplicaCaches(requests.trace, policy, num_replicas, capacity_blocks,
                                     requests.max_request_blocks(), tiers, costs, requests.block_size)
        self.queues = [ReplicaQueue(cost, max_batch, requests.block_size, self.first_token_s, self.finish_s)
                       for _ in range(num_replicas)]
        self.now = 0.0
        self._overlaps_of = -1
        self._overlaps: list[int] = []

    def exact_overlaps(self, i: int) -> list[int]:
        """Per replica, the leading prompt blocks of request i it caches now."""
        if self._overlaps_of != i:
            self._overlaps = self.caches.overlaps(self.requests.start[i], self.requests.end[i])
            self._overlaps_of = i
        return self._overlaps


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
             cost: CostModelLike, max_batch: int, seed: int = 0, progress: bool = False,
             tiers: Any = None) -> ClusterRun:
    """Run one (router, replica count) configuration over `requests`; with
    `tiers` (a tiers.spec.Hierarchy) each replica has those tiers below GPU
    memory, and a request's first token also waits for its loads."""
    if num_replicas < 1:
        raise ValueError(f"cluster.replicas: {num_replicas} is not a positive number of replicas")
    cluster = Cluster(requests, num_replicas, policy, capacity_blocks, cost, max_batch, tiers)
    rt = get_router(router)(router_params, num_replicas, seed=seed, variant=variant,
                            capacity_blocks=capacity_blocks, block_size=requests.block_size)
    n = len(requests)
    bs = requests.block_size
    replica = np.zeros(n, np.int32)
    hits = np.zeros(n, np.int64)
    cached = np.zeros(n, np.int64)
    overrode = np.full(n, -1, np.int8)
    off_best = np.zeros(n, np.bool_)
    arrival, n_lookup, start, end = requests.arrival_s, requests.n_lookup, requests.start, requests.end
    prompt, output = requests.prompt_tokens, requests.output_tokens
    queues, caches = cluster.queues, cluster.caches
    last = -np.inf
    for i in tqdm(range(n), desc=f"{rt.label} x{num_replicas}", unit="req", disable=not progress,
                  mininterval=0.5):
        t = arrival[i]
        if t < last:
            raise ValueError(f"request {requests.request_id[i]!r} arrives at {t} before the previous "
                             f"request ({last}): requests must come in arrival order")
        last = t
        cluster.now = t
        for q in queues:
            q.advance_to(t)
        r, flag = rt.choose(i, cluster)
        exact = cluster.exact_overlaps(i)
        off_best[i] = exact[r] < max(exact)
        h = caches.serve(r, start[i], end[i])
        hits[i] = h
        c = min(h * bs, prompt[i] - 1)  # the last prompt token is always computed
        cached[i] = c
        replica[i] = r
        if flag is not None:
            overrode[i] = int(flag)
        queues[r].enqueue(i, t, prompt[i], c, output[i])
        rt.routed(i, r, cluster)
        cluster._overlaps_of = -1
    for q in queues:
        q.drain()
    tiered = tiers is not None
    if tiered:  # loads do not occupy the GPU: they delay the request's own tokens only
        cluster.first_token_s = (np.asarray(cluster.first_token_s, np.float64) + caches.load_s).tolist()
        cluster.finish_s = (np.asarray(cluster.finish_s, np.float64) + caches.load_s).tolist()
    return ClusterRun(
        replica=replica, hit_blocks=hits, lookup_blocks=np.asarray(n_lookup, np.int64),
        cached_tokens=cached, arrival_s=np.asarray(arrival, np.float64),
        first_token_s=np.asarray(cluster.first_token_s, np.float64),
        finish_s=np.asarray(cluster.finish_s, np.float64), overrode=overrode,
        off_best_prefix=off_best, output_tokens=np.asarray(output, np.int64),
        replica_prefill_tokens=np.array([q.prefill_total for q in queues], np.int64),
        replica_busy_s=np.array([q.busy_s for q in queues], np.float64),
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
