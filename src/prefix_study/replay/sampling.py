"""Sampled hit-rate curves for huge traces (SHARDS adapted to prefix chains).

SHARDS (Waldspurger et al., FAST'15) keeps the accesses whose key hashes
below a threshold (rate R) and replays the sample with capacities scaled by
R: the distinct blocks between two uses of a sampled block shrink by R in
expectation, so the sample's hit rate at R*c estimates the full trace's at c.
Every access of a sampled key is kept, none of the others.

A prefix cache cannot sample blocks one by one: a block's prefix hit needs
every block before it in its request. Requests are sampled whole, by a key
that requests sharing blocks share too: the request's block at position
`depth` (its last block if shorter). With chained hashes two requests that
share the block at `depth` share every block before it, so each sampled
prefix subtree is seen whole. `depth=0` (the first block) is the plain
rule. It fails when a few heads are shared by most requests: every request
of the Mooncake conversation trace starts with the same block, so depth 0
samples all of it or nothing. With `depth=d` the blocks before position d
(the shared heads) are kept for every request, and only the rest of each
request is sampled; kept-for-all accesses count with weight 1 in the hit
rate, sampled ones with weight 1/R (inverse inclusion probability). The
heads then see every request, as in the full trace, and each head is a
SHARDS key kept with probability 1. `depth="auto"` takes the smallest depth
at which no key is shared by more than `max_share` of the requests.

`conversation` keys (the request id without its turn suffix,
`<workload>-<conversation>-<turn>`) sample multi-turn conversations whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from prefix_study.replay.curves import ONE_PASS, lru_stack_distances, prefix_distances, tail_first_stack_distances
from prefix_study.replay.simulate import replay_hit_mask
from prefix_study.replay.trace import NOT_LOOKED_UP, PARTIAL_TAIL, BlockTrace, encode_trace, request_start_mask

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MODULUS = 1 << 24
#: Deepest position `depth="auto"` considers.
MAX_AUTO_DEPTH = 64


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


def _keys_at_depth(hashes: np.ndarray, first: np.ndarray, lengths: np.ndarray, depth: int) -> np.ndarray:
    return hashes[first + np.minimum(depth, lengths - 1)]


def auto_depth(frame: pl.DataFrame, max_share: float = 0.01) -> int:
    """Smallest position whose block no more than `max_share` of the requests share."""
    starts = request_start_mask(frame)
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, frame.height))
    hashes = frame["block_hash"].to_numpy()
    for d in range(MAX_AUTO_DEPTH + 1):
        _, counts = np.unique(_keys_at_depth(hashes, first, lengths, d), return_counts=True)
        if counts.max() <= max(1, max_share * len(first)):
            return d
    return MAX_AUTO_DEPTH


@dataclass(frozen=True)
class Sample:
    """A sampled trace frame; `weight` per row (1 or 1/rate)."""

    frame: pl.DataFrame
    weight: np.ndarray
    rate: float
    depth: int


def sample_rows(block_keys: np.ndarray, lengths: np.ndarray, rate: float, depth: int = 0,
                seed: int = 0, request_keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, weight of kept rows) for accesses grouped in requests of
    `lengths` (in order): each request's rows from position `depth` on are
    kept if its key is sampled (weight 1/rate), rows before `depth` always
    (weight 1). The key is the request's block at `depth` unless
    `request_keys` (one per request) are given."""
    first = np.cumsum(lengths) - lengths
    keys = _keys_at_depth(block_keys, first, lengths, depth) if request_keys is None else request_keys
    in_sample = np.repeat(sampled_keys(keys.astype(np.uint64), rate, seed), lengths)
    position = np.arange(block_keys.shape[0]) - np.repeat(first, lengths)
    head = position < depth
    keep = head | in_sample
    return keep, np.where(head, 1.0, 1.0 / rate)[keep]


def sample_frame(frame: pl.DataFrame, rate: float, by: str = "block", depth: int | str = 0,
                 seed: int = 0, max_share: float = 0.01) -> Sample:
    """Keep whole request tails whose key is in the sample (see module doc).

    by: `block` (the block at `depth`) or `conversation`; depth: int or "auto".
    """
    if by not in ("block", "conversation"):
        raise ValueError(f"sample key {by!r}: allowed ['block', 'conversation']")
    if frame.height == 0:
        return Sample(frame, np.zeros(0), rate, 0)
    if depth == "auto":
        depth = auto_depth(frame, max_share)
    depth = int(depth)
    first = np.flatnonzero(request_start_mask(frame))
    lengths = np.diff(np.append(first, frame.height))
    request_keys = None
    if by == "conversation":
        conv = frame["request_id"].gather(first).str.replace(r"-\d+$", "")
        request_keys = conv.hash(seed=0).to_numpy().astype(np.uint64)
    keep, weight = sample_rows(frame["block_hash"].to_numpy(), lengths, rate, depth, seed, request_keys)
    return Sample(frame.filter(pl.Series(keep)), weight, rate, depth)


def scaled_capacity(capacity: int, rate: float) -> int:
    """Capacity of the sample standing for `capacity` blocks of the full trace."""
    return int(round(capacity * rate))


def weighted_hit_rates(trace: BlockTrace, weight: np.ndarray, policy: str, semantics: str,
                       capacities) -> np.ndarray:
    """Weighted hit rate (looked-up accesses) of `trace` at each capacity:
    one pass where the policy has a one-pass curve, else one replay each."""
    caps = np.asarray(capacities, dtype=np.int64)
    looked = (trace.flags & NOT_LOOKED_UP) == 0
    w = np.where(looked, weight, 0.0)
    total = w.sum()
    if total == 0:
        return np.zeros(len(caps))
    partial = bool(np.any(trace.flags & PARTIAL_TAIL))
    if (policy, semantics) in ONE_PASS and not (policy == "lru" and semantics == "prefix" and partial):
        if policy == "lru" and semantics == "prefix":
            d = tail_first_stack_distances(trace.ids, trace.flags, trace.num_ids)
        else:
            d = lru_stack_distances(trace.ids, trace.num_ids)
        if semantics == "prefix":
            d = prefix_distances(d, trace.flags)
        finite = d <= trace.num_ids
        curve = np.cumsum(np.bincount(d[finite], weights=w[finite], minlength=trace.num_ids + 1))
        hits = curve[np.clip(caps, 0, trace.num_ids)]
    else:
        hits = np.array([float(w[replay_hit_mask(trace, policy, int(c), semantics)].sum()) for c in caps])
    return hits / total


def sampled_hit_rates(sample: Sample, policy: str, semantics: str, capacities) -> np.ndarray:
    """Estimated full-trace hit rate at each capacity: the sample's weighted
    hit rate at the capacity scaled by the sampling rate."""
    scaled = [scaled_capacity(int(c), sample.rate) for c in np.asarray(capacities)]
    return weighted_hit_rates(encode_trace(sample.frame), sample.weight, policy, semantics, scaled)
