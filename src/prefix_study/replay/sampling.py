"""Sampled hit-rate curves for huge traces (SHARDS adapted to prefix chains).

SHARDS (Waldspurger et al., FAST'15) keeps the accesses whose key hashes
below a threshold (rate R), every access of a kept key: the number of
distinct blocks between two uses of a kept block shrinks by R in
expectation, so a distance d in the sample stands for d / R in the full
trace (equivalently: replay the sample at capacity R*c).

A prefix cache cannot sample blocks one by one: a block's prefix hit needs
every block before it in its request. Requests are sampled whole (from
their first non-hot block on), by a key that requests sharing blocks share
too. With chained hashes two requests that share a block share every block
before it, so each sampled prefix subtree is seen whole and the prefix rule
still holds in the sample.

Hot heads. When a few head blocks are shared by most requests (every request
of the Mooncake conversation trace starts with the same block; a synthetic
trace's popular system prompts), keying requests by their first block keeps
all of the trace or none of it. So blocks that at least `hot_share` of the
requests contain (always a prefix of each request) are "hot": kept for
every request, and the key is the request's first non-hot block (its last
block if all are hot). Hot and sampled blocks are then kept with different
probabilities (1 and R), and distances are estimated by inverse-probability
weighting instead of one global scale: the estimated stack distance of an
access is the sum over the distinct blocks since its previous use of
1/(their inclusion probability), a Fenwick tree of weights. Hit rates weight
each access the same way. One correction: blocks sampled by the same key
as the accessed block are in the sample with certainty given that it is
(a follow-up turn's own prefix), so they count 1, not 1/R: the estimate is
d = sum_w - (w - 1) * d_key, with d_key the stack distance within the
accesses of the same key. With no hot blocks and unit keys this is SHARDS.

`weighted_lru_curves` does this in one pass that stores no distance per
access (both semantics at once), so a 100M-access trace sampled at 1% (23M
kept rows, hot heads included) fits in about 1 GiB (bench/sampled_curve.py).

`conversation` keys (the request id without its turn suffix,
`<workload>-<conversation>-<turn>`) sample multi-turn conversations whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from prefix_study.replay.curves import ONE_PASS, fenwick_add, fenwick_sum, lru_stack_distances, tail_first_stack_distances
from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, jit
from prefix_study.replay.simulate import replay_hit_mask
from prefix_study.replay.trace import BlockTrace, encode_trace, request_start_mask
from prefix_study.traces.block_ids import with_block_ids

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MODULUS = 1 << 24
#: Default share of requests that makes a block hot (kept for every request).
#: Lower keeps more rows but removes the heavy keys that make the estimate
#: coarse. At 1% sampling of 20M synthetic accesses (bench/sampled_curve.py,
#: seeds 1-6), prefix MAE 0.003-0.012 (mean 0.0062) at 0.0005 and
#: 0.003-0.0066 (mean 0.0045) at 0.0002, for 10% more kept rows (hot rows
#: ~21% of all accesses); 0.01 gave 0.016-0.034.
HOT_SHARE = 0.0002
INF = np.inf


def _mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 finaliser: a well-spread hash of uint64 keys."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def sampled_keys(keys: np.ndarray, rate: float, seed: int = 0) -> np.ndarray:
    """Which uint64 keys fall in the sample (hash mod 2^24 < rate * 2^24)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate={rate}: must be in (0, 1]")
    return (_mix64(keys, seed) % np.uint64(_MODULUS)) < np.uint64(round(rate * _MODULUS))


def hot_blocks(block_keys: np.ndarray, lengths: np.ndarray, hot_share: float = HOT_SHARE) -> np.ndarray:
    """Keys of the blocks that at least `hot_share` of the requests contain."""
    if hot_share >= 1.0 or lengths.shape[0] == 0:
        return np.zeros(0, dtype=block_keys.dtype)
    keys, counts = np.unique(block_keys, return_counts=True)  # chained: once per request
    return keys[counts >= max(2, hot_share * lengths.shape[0])]


def sample_rows(block_keys: np.ndarray, lengths: np.ndarray, rate: float, hot: np.ndarray,
                seed: int = 0, request_keys: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep mask, and per kept row: inclusion probability of its block, its
    sampling key) for accesses grouped in requests of `lengths` (in order):
    hot rows always (probability 1, key 0), the other rows of a request if
    its key is sampled (probability `rate`). The key is the request's first
    non-hot block unless `request_keys` (one per request) are given."""
    n = block_keys.shape[0]
    first = np.cumsum(lengths) - lengths
    is_hot = np.isin(block_keys, hot) if hot.shape[0] else np.zeros(n, dtype=np.bool_)
    if request_keys is None:
        request = np.repeat(np.arange(lengths.shape[0]), lengths)
        hot_count = np.bincount(request, weights=is_hot, minlength=lengths.shape[0]).astype(np.int64)
        request_keys = block_keys[first + np.minimum(hot_count, lengths - 1)]
    request_keys = request_keys.astype(np.uint64)
    in_sample = np.repeat(sampled_keys(request_keys, rate, seed), lengths)
    keep = is_hot | in_sample
    row_keys = np.where(is_hot, np.uint64(0), np.repeat(request_keys, lengths))
    return keep, np.where(is_hot, 1.0, rate)[keep], row_keys[keep]


@dataclass(frozen=True)
class Sample:
    """A sampled trace frame; per row: inclusion probability, sampling key."""

    frame: pl.DataFrame
    probability: np.ndarray
    key: np.ndarray
    rate: float


def sample_frame(frame: pl.DataFrame, rate: float, by: str = "block", seed: int = 0,
                 hot_share: float = HOT_SHARE) -> Sample:
    """Keep hot heads and the sampled requests' other blocks (module doc).
    by: `block` (first non-hot block) or `conversation`."""
    if by not in ("block", "conversation"):
        raise ValueError(f"sample key {by!r}: allowed ['block', 'conversation']")
    if frame.height == 0:
        return Sample(frame, np.zeros(0), np.zeros(0, np.uint64), rate)
    first = np.flatnonzero(request_start_mask(frame))
    lengths = np.diff(np.append(first, frame.height))
    hashes = frame["block_hash"].to_numpy()
    request_keys = None
    if by == "conversation":
        conv = frame["request_id"].gather(first).str.replace(r"-\d+$", "")
        request_keys = conv.hash(seed=0).to_numpy().astype(np.uint64)
    keep, prob, key = sample_rows(hashes, lengths, rate, hot_blocks(hashes, lengths, hot_share), seed,
                                  request_keys)
    # Block ids anew over the sample: dense, first use within it (as the kernels' arrays expect).
    return Sample(with_block_ids(frame.filter(pl.Series(keep))), prob, key, rate)


@jit
def _weighted_lru_hits(ids, flags, probability, same, capacities, tail_first, last):
    """One pass of weighted stack distances (module doc) over the sample:
    weighted block and prefix (running maximum within the request) hit sums
    at each capacity, and the weighted number of looked-up accesses. `same`:
    the within-key distance of each row with probability < 1, in row order;
    `last` (zeros, one per id) holds each block's latest time slot. No
    distance per access is stored, so memory is the tree plus `last`."""
    n = ids.shape[0]
    k = capacities.shape[0]
    block = np.zeros(k + 1, dtype=np.float64)
    prefix = np.zeros(k + 1, dtype=np.float64)
    tree = np.zeros(n + 1, dtype=np.float64)  # Fenwick tree of weights over time slots
    total = 0.0  # weight of the distinct blocks seen so far
    looked = 0.0
    base = 0
    end = 0
    run = 0.0
    c = 0
    for i in range(n):
        f = flags[i]
        if f & REQUEST_START:
            run = 0.0
        if tail_first and (i == end or (f & REQUEST_START)):
            base = i
            end = i + 1
            while end < n and not (flags[end] & REQUEST_START):
                end += 1
        slot = base + (end - i) if tail_first else i + 1
        x = ids[i]
        p = np.float64(probability[i])
        w = 1.0 / p
        t = last[x]
        if t == 0:
            d = INF
            total += w
        else:
            d = total - fenwick_sum(tree, t) + w
            fenwick_add(tree, t, -w)
        fenwick_add(tree, slot, w)
        last[x] = slot
        if p < 1.0:
            # Same-key blocks are in the sample for sure given this one is: count 1, not 1/p.
            if t != 0:
                d -= (w - 1.0) * same[c]
            c += 1
        if f & NOT_LOOKED_UP:
            run = INF
            continue
        if d > run:
            run = d
        looked += w
        block[np.searchsorted(capacities, d - 1e-9)] += w
        prefix[np.searchsorted(capacities, run - 1e-9)] += w
    return np.cumsum(block)[:k], np.cumsum(prefix)[:k], looked


def _within_key_distances(ids, flags, probability, key, tail_first):
    """Stack distance of each row with probability < 1 (in row order) among
    the rows of its own sampling key: the key's sub-trace, in which a
    request starts at its first sampled row."""
    sub = np.flatnonzero(probability < 1)
    if sub.shape[0] == 0:
        return np.zeros(0)
    starts = (flags[sub] & REQUEST_START) != 0
    starts[1:] |= sub[1:] != sub[:-1] + 1  # the request's hot head ended just before
    starts[0] = True
    order = np.argsort(key[sub], kind="stable")
    k = key[sub][order]
    f = np.where(starts[order], REQUEST_START, 0).astype(np.uint8)
    f[1:][k[1:] != k[:-1]] = REQUEST_START
    dense = np.unique(ids[sub], return_inverse=True)[1].reshape(-1)[order]
    num = int(dense.max()) + 1
    d = (tail_first_stack_distances(dense, f, num) if tail_first else lru_stack_distances(dense, num))
    out = np.empty(sub.shape[0], dtype=np.float64)
    out[order] = d  # COLD rows are first uses in the full sample too: not used
    return out


def weighted_lru_curves(ids: np.ndarray, flags: np.ndarray, probability: np.ndarray, key: np.ndarray | None,
                        capacities, tail_first: bool, num_ids: int | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Estimated full-trace (block, prefix) hit rates of LRU at each capacity
    (blocks of the full trace) from sampled rows: ids (int, < num_ids),
    encoded flags, per-row inclusion probability (any float dtype) and
    sampling key (rows of probability 1 are not read). tail_first: vLLM's
    release order (prefix `lru`), else plain LRU (block `lru`, `lru_plain`)."""
    caps = np.asarray(capacities, dtype=np.float64)
    order = np.argsort(caps, kind="stable")
    n = ids.shape[0]
    if n == 0:
        return np.zeros(len(caps)), np.zeros(len(caps))
    if num_ids is None:
        num_ids = int(ids.max()) + 1
    if key is None:  # no keys: no correction (SHARDS with unit keys)
        same = np.zeros(int(np.count_nonzero(probability < 1)))
    else:
        same = _within_key_distances(ids, flags, probability, key, tail_first)
    last = np.zeros(num_ids, dtype=np.int32 if n < 2**31 - 1 else np.int64)
    block, prefix, looked = _weighted_lru_hits(ids, flags, probability, same, caps[order], tail_first, last)
    out_b = np.empty(len(caps))
    out_p = np.empty(len(caps))
    out_b[order] = block / looked if looked else 0.0
    out_p[order] = prefix / looked if looked else 0.0
    return out_b, out_p


def weighted_hit_rates(trace: BlockTrace, probability: np.ndarray, rate: float, policy: str,
                       semantics: str, capacities, key: np.ndarray | None = None) -> np.ndarray:
    """Estimated full-trace hit rate at each capacity (blocks of the full
    trace) from a sample with per-access inclusion probabilities and keys.
    One-pass LRU curves use weighted distances; other policies are replayed
    at the capacity scaled by `rate` (hot blocks then count R-fold: coarser)."""
    caps = np.asarray(capacities, dtype=np.float64)
    looked = (trace.flags & NOT_LOOKED_UP) == 0
    w = np.where(looked, 1.0 / probability, 0.0)
    if w.sum() == 0:
        return np.zeros(len(caps))
    partial = bool(np.any(trace.flags & PARTIAL_TAIL))
    if (policy, semantics) in ONE_PASS and not (policy == "lru" and semantics == "prefix" and partial):
        block, prefix = weighted_lru_curves(trace.ids, trace.flags, probability, key, caps,
                                            policy == "lru" and semantics == "prefix", trace.num_ids)
        return prefix if semantics == "prefix" else block
    hits = np.array([float(w[replay_hit_mask(trace, policy, int(round(c * rate)), semantics)].sum())
                     for c in caps])
    return hits / w.sum()


def sampled_hit_rates(sample: Sample, policy: str, semantics: str, capacities) -> np.ndarray:
    """Estimated full-trace hit rate at each capacity from a sampled frame."""
    return weighted_hit_rates(encode_trace(sample.frame), sample.probability, sample.rate, policy,
                              semantics, capacities, sample.key)
