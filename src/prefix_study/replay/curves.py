"""Whole hit-rate curves in one pass (LRU stack distances).

LRU is a stack algorithm (Mattson et al. 1970): the cache of c blocks always
holds the c most recently used blocks, so an access hits at capacity c
exactly when its stack distance (1 + the number of distinct blocks used since
the block's previous use) is at most c. One pass computing every distance
(a Fenwick tree over access times holding a 1 at each block's latest use:
O(n log n)) gives the hit count at every capacity at once.

- `block` semantics, LRU: hits(c) = #looked-up accesses with distance <= c.
- `prefix` semantics with plain-LRU recency (`lru_plain`): its cache contents
  are block-LRU's (same updates, prefix hit counting), so an access is a
  prefix hit at c exactly when it and every earlier block of its request are
  cached and looked up: the running maximum of the distances within the
  request (infinite from a not-looked-up block on) must be <= c.
- vLLM's tail-first `lru` under prefix semantics (kernels/lru.py) is LRU
  over an augmented access sequence: each request's blocks in order, then
  the same blocks again tail first (its release into the free queue). A
  running request's blocks are the most recent in that order, so pinning
  them changes nothing while the request fits the cache; a request longer
  than the cache keeps its first c distinct blocks, which are also the top c
  of the augmented stack after its release. So it is a stack algorithm and
  its curve is the running maximum (within a request) of the augmented
  stack distances. This holds for chained traces (no block twice in one
  request) without partial tail blocks: a partial tail takes a slot from the
  queue head while its request runs and frees it afterwards, which leaves a
  hole that only the next miss fills, so the cache of c blocks is no longer
  the top c of any one order. Inclusion still held on every random trace
  tried (tests/test_replay_curves.py checks it), but for such traces the
  curve stays a replay per capacity (`hit_curve` refuses them).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, jit
from prefix_study.replay.trace import BlockTrace

#: Stack distance of a first access (a miss at every capacity).
COLD = np.iinfo(np.int64).max

#: (policy, semantics) pairs with a one-pass curve.
ONE_PASS = {("lru", "block"), ("lru_plain", "block"), ("lru_plain", "prefix"), ("lru", "prefix")}

CURVE_SCHEMA = {
    "workload": pl.String,
    "block_size": pl.Int64,
    "policy": pl.String,
    "semantics": pl.String,
    "capacity_blocks": pl.Int64,
    "capacity_tokens": pl.Int64,
    "accesses": pl.Int64,
    "hits": pl.Int64,
    "hit_rate": pl.Float64,
    # `one_pass` (stack distances, every capacity exact) or `replay` (one
    # replay per grid capacity).
    "method": pl.String,
}

#: Points of the curve table per trace: one-pass curves on a fine geometric
#: grid, replayed policies on a coarse one (plus the sweep's capacities).
ONE_PASS_POINTS = 200
REPLAY_POINTS = 16


@jit
def fenwick_add(tree, j, v):
    """Add v at time slot j of a Fenwick tree over slots 1..len(tree)-1."""
    n = tree.shape[0] - 1
    while j <= n:
        tree[j] += v
        j += j & (-j)


@jit
def fenwick_sum(tree, j):
    """Sum over time slots 1..j."""
    s = 0
    while j > 0:
        s += tree[j]
        j -= j & (-j)
    return s


@jit
def lru_stack_distances(ids, num_ids):
    """Stack distance of every access (COLD for first accesses)."""
    n = ids.shape[0]
    out = np.empty(n, dtype=np.int64)
    tree = np.zeros(n + 1, dtype=np.int32)  # Fenwick tree over times 1..n
    last = np.zeros(num_ids, dtype=np.int64)  # latest use time + 1 (0: unseen)
    distinct = 0
    for i in range(n):
        x = ids[i]
        t = last[x]
        if t == 0:
            out[i] = COLD
            distinct += 1
        else:
            # markers at times <= t (including x's own at t)
            out[i] = distinct - fenwick_sum(tree, t) + 1
            fenwick_add(tree, t, -1)
        fenwick_add(tree, i + 1, 1)
        last[x] = i + 1
    return out


@jit
def tail_first_stack_distances(ids, flags, num_ids):
    """Stack distances of vLLM's tail-first LRU: LRU over each request's
    blocks in order followed by the same blocks released tail first.

    Each request owns a window of as many time slots as it has blocks and
    its j-th block takes the window's (k-1-j)-th slot: measured from before
    the window every block of the request is more recent than all older
    ones, and after the request the order is already the release order
    (head most recent), so the release costs nothing."""
    n = ids.shape[0]
    out = np.empty(n, dtype=np.int64)
    tree = np.zeros(n + 1, dtype=np.int32)  # Fenwick tree over times 1..n
    last = np.zeros(num_ids, dtype=np.int64)
    distinct = 0
    base = 0
    end = 0
    for i in range(n):
        if i == end or (flags[i] & REQUEST_START):
            base = i
            end = i + 1
            while end < n and not (flags[end] & REQUEST_START):
                end += 1
        x = ids[i]
        t = last[x]
        slot = base + (end - i)  # 1-based: the request's last slot for its head
        if t == 0:
            out[i] = COLD
            distinct += 1
        else:
            out[i] = distinct - fenwick_sum(tree, t) + 1
            fenwick_add(tree, t, -1)
        fenwick_add(tree, slot, 1)
        last[x] = slot
    return out


@jit
def prefix_distances(distances, flags):
    """Smallest LRU capacity at which each access is a prefix hit: the running
    maximum of stack distances within its request, COLD from the first
    not-looked-up block on."""
    n = distances.shape[0]
    out = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        f = flags[i]
        if f & REQUEST_START:
            m = 0
        d = COLD if (f & NOT_LOOKED_UP) else distances[i]
        if d > m:
            m = d
        out[i] = m
    return out


@jit
def _hits_by_capacity(distances, flags, max_capacity):
    """hits[c] for c = 0..max_capacity: looked-up accesses with distance <= c."""
    counts = np.zeros(max_capacity + 1, dtype=np.int64)
    for i in range(distances.shape[0]):
        d = distances[i]
        if d <= max_capacity and not (flags[i] & NOT_LOOKED_UP):
            counts[d] += 1
    return np.cumsum(counts)


def hit_curve(trace: BlockTrace, policy: str, semantics: str,
              distances: np.ndarray | None = None) -> np.ndarray:
    """Hit count at every capacity 0..num_ids (index = capacity in blocks),
    in one pass. `distances` (lru_stack_distances of the trace) may be passed
    to share one pass between semantics."""
    if (policy, semantics) not in ONE_PASS:
        raise ValueError(f"no one-pass curve for policy {policy!r} under {semantics!r} "
                         f"semantics; one-pass: {sorted(ONE_PASS)}")
    if policy == "lru" and semantics == "prefix":
        if np.any(trace.flags & PARTIAL_TAIL):
            raise ValueError("no one-pass curve for vLLM's tail-first lru on a trace with partial "
                             "tail blocks (see replay/curves.py); replay per capacity")
        distances = tail_first_stack_distances(trace.ids, trace.flags, trace.num_ids)
    elif distances is None:
        distances = lru_stack_distances(trace.ids, trace.num_ids)
    if semantics == "prefix":
        distances = prefix_distances(distances, trace.flags)
    return _hits_by_capacity(distances, trace.flags, trace.num_ids)


def capacity_grid(num_ids: int, points: int, extra=()) -> np.ndarray:
    """Geometric capacities 1..num_ids (and `extra`), unique and sorted."""
    if num_ids < 1:
        return np.zeros(0, dtype=np.int64)
    grid = np.geomspace(1, num_ids, points).round().astype(np.int64)
    return np.unique(np.concatenate([grid, [num_ids], np.asarray(list(extra), np.int64)]))


def has_one_pass(trace: BlockTrace, policy: str, semantics: str) -> bool:
    """Whether `hit_curve` can give this policy's curve on this trace."""
    if (policy, semantics) not in ONE_PASS:
        return False
    return not (policy == "lru" and semantics == "prefix" and np.any(trace.flags & PARTIAL_TAIL))


def curve_frame(trace: BlockTrace, workload: str, block_size: int, policies, semantics,
                extra_capacities=(), cost_model=None) -> pl.DataFrame:
    """Curve rows (CURVE_SCHEMA) of every policy x semantics: one pass where
    possible (ONE_PASS_POINTS capacities), else replays (REPLAY_POINTS;
    cost_model: recompute costs of cost-aware policies, see
    simulate.recompute_cost)."""
    from prefix_study.replay.simulate import replay

    accesses = trace.num_lookups
    fine = capacity_grid(trace.num_ids, ONE_PASS_POINTS, extra_capacities)
    coarse = capacity_grid(trace.num_ids, REPLAY_POINTS, extra_capacities)
    distances = None
    parts = []
    for policy in policies:
        for sem in semantics:
            if has_one_pass(trace, policy, sem):
                if distances is None:
                    distances = lru_stack_distances(trace.ids, trace.num_ids)
                caps = fine
                hits = hit_curve(trace, policy, sem, distances)[np.clip(caps, 0, trace.num_ids)]
                method = "one_pass"
            else:
                caps = coarse
                hits = np.array([replay(trace, policy, int(c), sem, cost_model, int(block_size)).hits for c in caps], dtype=np.int64)
                method = "replay"
            parts.append(pl.DataFrame({
                "workload": workload, "block_size": int(block_size), "policy": policy, "semantics": sem,
                "capacity_blocks": caps, "capacity_tokens": caps * int(block_size), "accesses": accesses,
                "hits": hits, "hit_rate": hits / accesses if accesses else np.zeros(len(caps)),
                "method": method,
            }, schema=CURVE_SCHEMA))
    return pl.concat(parts) if parts else pl.DataFrame(schema=CURVE_SCHEMA)


def curve_table(trace_paths, sweep_cfg, hit_rates: pl.DataFrame | None = None,
                cost_model=None) -> pl.DataFrame:
    """Hit-rate curves of `sweep.curve_policies` x `sweep.semantics` over every
    trace of the sweep, on capacities in blocks and tokens (plus the sweep's
    own capacities in blocks, read from the hit-rate table when given)."""
    from prefix_study.replay.trace import load_block_trace

    parts = []
    for (workload, block_size) in sorted(trace_paths):
        trace = load_block_trace(trace_paths[(workload, block_size)])
        extra = () if hit_rates is None else hit_rates.filter(
            (pl.col("workload") == workload) & (pl.col("block_size") == block_size))["capacity_blocks"].unique().to_list()
        parts.append(curve_frame(trace, workload, block_size, list(sweep_cfg.curve_policies),
                                 [str(s) for s in sweep_cfg.semantics], extra, cost_model))
    table = pl.concat(parts) if parts else pl.DataFrame(schema=CURVE_SCHEMA)
    return table.sort("workload", "block_size", "policy", "semantics", "capacity_blocks")


@jit
def lru_hits_at(ids, flags, num_ids, capacities):
    """Block-LRU and plain-LRU prefix hit counts at each of `capacities`
    (sorted, int64) in one pass, without storing a distance per access: for
    traces too big to hold n distances (bench/sampled_curve.py)."""
    n = ids.shape[0]
    k = capacities.shape[0]
    block_counts = np.zeros(k + 1, dtype=np.int64)
    prefix_counts = np.zeros(k + 1, dtype=np.int64)
    tree = np.zeros(n + 1, dtype=np.int32)
    last = np.zeros(num_ids, dtype=np.int64)
    distinct = 0
    run_max = 0
    for i in range(n):
        f = flags[i]
        if f & REQUEST_START:
            run_max = 0
        x = ids[i]
        t = last[x]
        if t == 0:
            d = COLD
            distinct += 1
        else:
            d = distinct - fenwick_sum(tree, t) + 1
            fenwick_add(tree, t, -1)
        fenwick_add(tree, i + 1, 1)
        last[x] = i + 1
        dp = COLD if (f & NOT_LOOKED_UP) else d
        if dp > run_max:
            run_max = dp
        if not (f & NOT_LOOKED_UP):
            block_counts[np.searchsorted(capacities, d)] += 1
            prefix_counts[np.searchsorted(capacities, run_max)] += 1
    return np.cumsum(block_counts)[:k], np.cumsum(prefix_counts)[:k]


def write_curves(trace_paths, sweep_cfg, out_parquet, hit_rates: pl.DataFrame | None = None,
                 cost_model=None) -> pl.DataFrame:
    """Stage output `replay/curves.parquet` (curve_table)."""
    from prefix_study.io import write_parquet

    table = curve_table(trace_paths, sweep_cfg, hit_rates, cost_model)
    write_parquet(table, out_parquet)
    return table
