"""Requests of a cluster simulation: a block trace regrouped per request.

The trace gives each request's blocks in access order (dense ids shared by
every replica), how many leading blocks vLLM looks up, and whether the request
also held a partial tail block; a lengths frame adds the token counts the
queue model needs (prompt and output tokens) and the session key that
`session_affinity` hashes. Requests keep the trace's order, which is arrival
order: engine traces are ordered by the time the engine scheduled each
request, external traces by timestamp, the mixed trace by merged timestamp.

Context policies (cost_lru, wa_prob) also need each request's category
(workload x turn: `BlockTrace.categories`, numbered over the whole trace as
the single-instance replay numbers them) and each block's position (its
index in the request, which the trace's `position` column must equal).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from prefix_study.replay.trace import (NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, BlockTrace, encode_trace,
                                      positions_from_flags)

#: Columns of a lengths frame (one row per request).
LENGTH_COLUMNS = ("request_id", "prompt_tokens", "output_tokens", "session_id")


def stable_key(text: str) -> int:
    """A 64-bit key of a string that does not depend on PYTHONHASHSEED."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def first_block_key(blocks: tuple[int, ...]) -> int:
    """A ring key of a request's first block (dense id, spread over 64 bits)."""
    return stable_key(f"block-{blocks[0]}") if blocks else 0


@dataclass
class ClusterRequests:
    """Per-request columns as Python lists (the simulator reads them one
    request at a time, where lists are faster than arrays)."""

    request_id: list[str]
    workload: list[str]
    arrival_s: list[float]
    blocks: list[tuple[int, ...]]
    n_lookup: list[int]
    partial_tail: list[bool]
    prompt_tokens: list[int]
    output_tokens: list[int]
    session_key: list[int]
    block_size: int
    num_ids: int
    # BlockTrace.categories of each request, and how many there are.
    category: list[int]
    num_categories: int
    # The encoded trace the replicas' caches serve: request i is its
    # accesses start[i]..end[i]-1.
    trace: BlockTrace
    start: list[int]
    end: list[int]

    def __len__(self) -> int:
        return len(self.request_id)

    @property
    def lookup_blocks(self) -> int:
        return int(sum(self.n_lookup))

    def max_request_blocks(self) -> int:
        return max((len(b) for b in self.blocks), default=0)

    # The same columns as arrays, for the simulation's numba code.
    @cached_property
    def prompt_array(self) -> np.ndarray:
        return np.asarray(self.prompt_tokens, dtype=np.int64)

    @cached_property
    def lookup_array(self) -> np.ndarray:
        return np.asarray(self.n_lookup, dtype=np.int64)

    @cached_property
    def start_array(self) -> np.ndarray:
        return np.asarray(self.start, dtype=np.int64)


def requests_from_trace(frame: pl.DataFrame, block_size: int,
                        lengths: pl.DataFrame | None = None) -> ClusterRequests:
    """Group a trace frame (trace contract, access order) into requests.

    lengths: request_id, prompt_tokens, output_tokens and optionally
    session_id (conversation id). Without it, a request's prompt is its
    looked-up blocks plus one block, its output one token and its session its
    first block (enough for cache-only studies; the stage always passes one).
    """
    trace = encode_trace(frame)
    flags = trace.flags
    starts = np.flatnonzero(flags & REQUEST_START)
    ends = np.append(starts[1:], trace.accesses)
    looked = (flags & NOT_LOOKED_UP) == 0
    ids = trace.ids.tolist()
    blocks, n_lookup = [], []
    for s, e in zip(starts.tolist(), ends.tolist()):
        seg = looked[s:e]
        k = int(seg.sum())
        if not seg[:k].all():
            raise ValueError(f"request {frame['request_id'][s]!r}: looked-up blocks are not a prefix "
                             "of its blocks (the cluster simulation needs vLLM's block order)")
        blocks.append(tuple(ids[s:e]))
        n_lookup.append(k)
    off = np.flatnonzero(trace.positions != positions_from_flags(flags))
    if off.size:
        raise ValueError(f"request {frame['request_id'][int(off[0])]!r}: block positions are not 0, 1, 2, ... "
                         "in access order (the cluster simulation needs whole requests in block order)")
    category, num_categories = trace.categories()
    first = frame.select("request_id", "workload", "time_s").gather(starts)
    rids = first["request_id"].to_list()
    if lengths is None:
        prompt = [(k + 1) * block_size for k in n_lookup]
        output = [1] * len(rids)
        session = [None] * len(rids)
    else:
        joined = first.select("request_id").join(lengths, on="request_id", how="left")
        missing = joined.filter(pl.col("prompt_tokens").is_null())["request_id"].to_list()
        if missing:
            raise ValueError(f"no token counts for requests {missing[:5]} ({len(missing)} in all)")
        prompt = joined["prompt_tokens"].cast(pl.Int64).to_list()
        output = joined["output_tokens"].cast(pl.Int64).to_list()
        session = (joined["session_id"].to_list() if "session_id" in joined.columns
                   else [None] * len(rids))
    session_key = [stable_key(str(s)) if s is not None else first_block_key(b) for s, b in zip(session, blocks)]
    return ClusterRequests(
        request_id=rids,
        workload=first["workload"].to_list(),
        arrival_s=first["time_s"].cast(pl.Float64).to_list(),
        blocks=blocks,
        n_lookup=n_lookup,
        partial_tail=[bool(f & PARTIAL_TAIL) for f in flags[starts].tolist()],
        prompt_tokens=[int(p) for p in prompt],
        output_tokens=[max(1, int(o)) for o in output],
        session_key=session_key,
        block_size=int(block_size),
        num_ids=trace.num_ids,
        category=category[starts].tolist(),
        num_categories=int(num_categories),
        trace=trace,
        start=starts.tolist(),
        end=ends.tolist(),
    )
