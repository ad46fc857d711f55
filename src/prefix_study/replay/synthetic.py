"""Seeded synthetic block traces with realistic prefix sharing.

For tests and benchmarks, before (or without) engine traces. Requests are
either follow-up turns of a recent conversation (previous prompt + new
blocks: multi-turn reuse) or new conversations that start with a popular
system prompt and sometimes a popular document (Zipf popularity), then unique
blocks. Hashes are chained like vLLM's, so both replay semantics apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from prefix_study.traces.importers import TRACE_SCHEMA, chain_block_ids


@dataclass(frozen=True)
class SyntheticTraceConfig:
    num_requests: int = 1000
    seed: int = 0
    workload: str = "synthetic"
    num_system_prompts: int = 16
    system_prompt_blocks: int = 4
    num_documents: int = 2000
    document_blocks: int = 24
    document_probability: float = 0.3
    zipf_exponent: float = 1.2
    followup_probability: float = 0.5
    # Follow-ups pick the k-th most recent conversation, k ~ geometric(p).
    recency_p: float = 0.05
    mean_new_blocks: float = 12.0
    max_request_blocks: int = 256
    arrival_rate: float = 20.0  # requests per second


def synthetic_trace(cfg: SyntheticTraceConfig = SyntheticTraceConfig()) -> pl.DataFrame:
    """A block trace in the trace contract schema (engine_hit null, lookup true)."""
    rng = np.random.default_rng(cfg.seed)
    next_id = 0

    def fresh(k: int) -> np.ndarray:
        nonlocal next_id
        out = np.arange(next_id, next_id + k, dtype=np.uint64)
        next_id += k
        return out

    systems = [fresh(cfg.system_prompt_blocks) for _ in range(cfg.num_system_prompts)]
    documents = [fresh(cfg.document_blocks) for _ in range(cfg.num_documents)]
    conversations: list[np.ndarray] = []
    contents: list[np.ndarray] = []
    new_blocks = 1 + rng.geometric(1.0 / cfg.mean_new_blocks, size=cfg.num_requests)
    for i in range(cfg.num_requests):
        conv = -1
        if conversations and rng.random() < cfg.followup_probability:
            k = min(int(rng.geometric(cfg.recency_p)), len(conversations))
            conv = len(conversations) - k
            blocks = np.concatenate([conversations[conv], fresh(int(new_blocks[i]))])
            if blocks.shape[0] > cfg.max_request_blocks:
                conv = -1
        if conv < 0:
            parts = [systems[(int(rng.zipf(cfg.zipf_exponent)) - 1) % cfg.num_system_prompts]]
            if rng.random() < cfg.document_probability:
                parts.append(documents[(int(rng.zipf(cfg.zipf_exponent)) - 1) % cfg.num_documents])
            parts.append(fresh(int(new_blocks[i])))
            blocks = np.concatenate(parts)[: cfg.max_request_blocks]
            conversations.append(blocks)
        else:
            conversations[conv] = blocks
        contents.append(blocks)
    lengths = np.array([c.shape[0] for c in contents], dtype=np.int64)
    values = np.concatenate(contents)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(values.shape[0], dtype=np.int64) - starts
    arrivals = np.cumsum(rng.exponential(1.0 / cfg.arrival_rate, size=cfg.num_requests))
    request_ids = [f"{cfg.workload}-{i:07d}" for i in range(cfg.num_requests)]
    total = int(values.shape[0])
    return pl.DataFrame(
        {
            "request_id": pl.DataFrame({"r": request_ids, "n": lengths})
            .select(pl.col("r").repeat_by("n").explode())["r"],
            "workload": [cfg.workload] * total,
            "time_s": np.repeat(arrivals, lengths),
            "position": positions.astype(np.int32),
            "block_hash": chain_block_ids(values, positions),
            "engine_hit": pl.Series([None] * total, dtype=pl.Boolean),
            "lookup": np.ones(total, dtype=np.bool_),
        },
        schema=TRACE_SCHEMA,
    )


def trace_from_requests(
    requests: list[list[int]], workload: str = "w", chain: bool = True,
    times: list[float] | None = None, lookup: list[list[bool]] | None = None,
) -> pl.DataFrame:
    """A trace frame from per-request block-id lists (small hand-made and
    property-test traces). chain=True hashes ids into chained block hashes;
    chain=False uses the ids as hashes directly."""
    lengths = np.array([len(r) for r in requests], dtype=np.int64)
    total = int(lengths.sum())
    values = np.array([b for r in requests for b in r], dtype=np.uint64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(total, dtype=np.int64) - starts
    times_arr = np.arange(len(requests), dtype=np.float64) if times is None else np.asarray(times, np.float64)
    return pl.DataFrame(
        {
            "request_id": [f"{workload}-{i}" for i, r in enumerate(requests) for _ in r],
            "workload": [workload] * total,
            "time_s": np.repeat(times_arr, lengths),
            "position": positions.astype(np.int32),
            "block_hash": chain_block_ids(values, positions) if chain else values,
            "engine_hit": pl.Series([None] * total, dtype=pl.Boolean),
            "lookup": np.ones(total, np.bool_) if lookup is None
            else np.array([x for r in lookup for x in r], dtype=np.bool_),
        },
        schema=TRACE_SCHEMA,
    )


def synthetic_block_stream(cfg: SyntheticTraceConfig, chunk_requests: int = 100_000, window: int = 20_000):
    """The process of `synthetic_trace` as a stream of chunks, for traces too
    big for one frame: yields (ids, request_lengths) per chunk of requests.

    ids are dense chain ids (int64), not hashes: a document's blocks get one
    id per (system prompt, document) pair, every other block is already
    unique to its prefix, so two accesses share an id exactly when their
    chained hashes would be equal. Follow-ups draw from the `window` most
    recent conversations (the geometric draw beyond 20,000 has probability
    ~e^-1000 at recency_p 0.05), so memory stays bounded."""
    from collections import deque

    rng = np.random.default_rng(cfg.seed)
    next_id = cfg.num_system_prompts * cfg.system_prompt_blocks
    systems = [np.arange(s * cfg.system_prompt_blocks, (s + 1) * cfg.system_prompt_blocks, dtype=np.int64)
               for s in range(cfg.num_system_prompts)]
    documents: dict[tuple[int, int], np.ndarray] = {}
    conversations: deque[np.ndarray] = deque(maxlen=window)
    done = 0
    while done < cfg.num_requests:
        count = min(chunk_requests, cfg.num_requests - done)
        new_blocks = 1 + rng.geometric(1.0 / cfg.mean_new_blocks, size=count)
        contents: list[np.ndarray] = []
        for i in range(count):
            conv = -1
            if conversations and rng.random() < cfg.followup_probability:
                k = min(int(rng.geometric(cfg.recency_p)), len(conversations))
                conv = len(conversations) - k
                fresh = np.arange(next_id, next_id + int(new_blocks[i]), dtype=np.int64)
                blocks = np.concatenate([conversations[conv], fresh])
                if blocks.shape[0] > cfg.max_request_blocks:
                    conv = -1
                else:
                    next_id += fresh.shape[0]
            if conv < 0:
                s = (int(rng.zipf(cfg.zipf_exponent)) - 1) % cfg.num_system_prompts
                parts = [systems[s]]
                if rng.random() < cfg.document_probability:
                    d = (int(rng.zipf(cfg.zipf_exponent)) - 1) % cfg.num_documents
                    if (s, d) not in documents:
                        documents[(s, d)] = np.arange(next_id, next_id + cfg.document_blocks, dtype=np.int64)
                        next_id += cfg.document_blocks
                    parts.append(documents[(s, d)])
                fresh = np.arange(next_id, next_id + int(new_blocks[i]), dtype=np.int64)
                next_id += fresh.shape[0]
                parts.append(fresh)
                blocks = np.concatenate(parts)[: cfg.max_request_blocks]
                conversations.append(blocks)
            else:
                conversations[conv] = blocks
            contents.append(blocks)
        done += count
        yield np.concatenate(contents), np.array([c.shape[0] for c in contents], dtype=np.int64)
