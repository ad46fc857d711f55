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

`conversation` keys (the request id without its turn suffix,
`<workload>-<conversation>-<turn>`) sample multi-turn conversations whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from prefix_study.replay.curves import ONE_PASS, lru_stack_distances, tail_first_stack_distances
from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, jit
from prefix_study.replay.simulate import replay_hit_mask
from prefix_study.replay.trace import BlockTrace, encode_trace, request_start_mask

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MODULUS = 1 << 24
#: Default share of requests that makes a block hot (kept for every request).
#: Lower keeps more rows but removes the heavy keys that make the estimate
#: coarse: on 20M synthetic accesses at 1% sampling, MAE 0.016-0.034 at 0.01
#: and 0.005-0.011 at 0.0005 (four seeds).
HOT_SHARE = 0.0005
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
    return Sample(frame.filter(pl.Series(keep)), prob, key, rate)


@jit
def weighted_stack_distances(ids, flags, weight, tail_first):
    """Estimated full-trace stack distance of each access: the sum of the
    weights (1 / inclusion probability) of the distinct blocks used since
    its previous use, its own included (inf for a first use). tail_first:
    vLLM's release order (curves.tail_first_stack_distances)."""
    n = ids.shape[0]
    out = np.empty(n, dtype=np.float64)
    tree = np.zeros(n + 1, dtype=np.float64)
    num_ids = 0
    for i in range(n):
        if ids[i] + 1 > num_ids:
            num_ids = ids[i] + 1
    last = np.zeros(num_ids, dtype=np.int64)
    total = 0.0
    base = 0
    end = 0
    for i in range(n):
        if tail_first and (i == end or (flags[i] & REQUEST_START)):
            base = i
            end = i + 1
            while end < n and not (flags[end] & REQUEST_START):
                end += 1
        x = ids[i]
        w = weight[i]
        t = last[x]
        slot = base + (end - i) if tail_first else i + 1
        if t == 0:
            out[i] = INF
            total += w
        else:
            s = 0.0
            j = t
            while j > 0:
                s += tree[j]
                j -= j & (-j)
            out[i] = total - s + w
            j = t
            while j <= n:
                tree[j] -= w
                j += j & (-j)
        j = slot
        while j <= n:
            tree[j] += w
            j += j & (-j)
        last[x] = slot
    return out


@jit
def _prefix_max(d, flags):
    out = np.empty(d.shape[0], dtype=np.float64)
    m = 0.0
    for i in range(d.shape[0]):
        f = flags[i]
        if f & REQUEST_START:
            m = 0.0
        v = INF if (f & NOT_LOOKED_UP) else d[i]
        if v > m:
            m = v
        out[i] = m
    return out


def _within_key_distances(ids, flags, key, tail_first):
    """Stack distance of each access among the accesses of its own key."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    f = flags[order].copy()
    new_key = np.ones(len(k), dtype=np.bool_)
    new_key[1:] = k[1:] != k[:-1]
    f[new_key] |= REQUEST_START  # a key's first row starts a request of the sub-trace
    sub = ids[order]
    d = (tail_first_stack_distances if tail_first else _plain_distances)(sub, f, int(ids.max()) + 1)
    out = np.empty(len(ids), dtype=np.float64)
    out[order] = d
    return out


def _plain_distances(ids, flags, num_ids):
    return lru_stack_distances(ids, num_ids)


def weighted_hit_rates(trace: BlockTrace, probability: np.ndarray, rate: float, policy: str,
                       semantics: str, capacities, key: np.ndarray | None = None) -> np.ndarray:
    """Estimated full-trace hit rate at each capacity (blocks of the full
    trace) from a sample with per-access inclusion probabilities. One-pass
    LRU curves use weighted distances; other policies are replayed at the
    capacity scaled by `rate` (hot blocks then count R-fold: coarser)."""
    caps = np.asarray(capacities, dtype=np.float64)
    looked = (trace.flags & NOT_LOOKED_UP) == 0
    w = np.where(looked, 1.0 / probability, 0.0)
    total = w.sum()
    if total == 0:
        return np.zeros(len(caps))
    partial = bool(np.any(trace.flags & PARTIAL_TAIL))
    if (policy, semantics) in ONE_PASS and not (policy == "lru" and semantics == "prefix" and partial):
        tail_first = policy == "lru" and semantics == "prefix"
        d = weighted_stack_distances(trace.ids, trace.flags, 1.0 / probability, tail_first)
        if key is not None and len(key):
            # Same-key blocks count 1, not 1/p (module doc); first uses stay inf.
            same = _within_key_distances(trace.ids, trace.flags, key, tail_first)
            finite = np.isfinite(d)
            d[finite] -= (1.0 / probability[finite] - 1.0) * same[finite]
        if semantics == "prefix":
            d = _prefix_max(d, trace.flags)
        order = np.argsort(d, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])])
        hits = cum[np.searchsorted(d[order], caps + 1e-9, side="right")]
    else:
        hits = np.array([float(w[replay_hit_mask(trace, policy, int(round(c * rate)), semantics)].sum())
                         for c in caps])
    return hits / total


def sampled_hit_rates(sample: Sample, policy: str, semantics: str, capacities) -> np.ndarray:
    """Estimated full-trace hit rate at each capacity from a sampled frame."""
    return weighted_hit_rates(encode_trace(sample.frame), sample.probability, sample.rate, policy,
                              semantics, capacities, sample.key)
