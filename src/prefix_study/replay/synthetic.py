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

from prefix_study.replay.kernels._common import jit
from prefix_study.traces.block_ids import trace_frame
from prefix_study.traces.importers import chain_block_ids


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
    return trace_frame(
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
    return trace_frame(
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
    )


def synthetic_block_stream(cfg: SyntheticTraceConfig, chunk_requests: int = 100_000, window: int = 20_000):
    """The process of `synthetic_trace` as a stream of chunks, for traces too
    big for one frame: yields (ids, request_lengths) per chunk of requests.

    ids are dense chain ids (int64), not hashes: a document's blocks get one
    id per (system prompt, document) pair, every other block is already
    unique to its prefix, so two accesses share an id exactly when their
    chained hashes would be equal. Follow-ups draw from the `window` most
    recent conversations (the geometric draw beyond 20,000 has probability
    ~e^-1000 at recency_p 0.05), so memory stays bounded: the conversations
    live in one preallocated ring (window x max_request_blocks), and each
    chunk is one numba call (`_stream_chunk`) writing into one array, so a
    100M-access stream costs no per-request Python objects. Random draws come
    from numba's generator, re-seeded per chunk from (seed, chunk index):
    deterministic, but a different stream than `synthetic_trace`'s."""
    if window < 1 or chunk_requests < 1:
        raise ValueError(f"window={window}, chunk_requests={chunk_requests}: must be >= 1")
    ring = np.zeros((window, cfg.max_request_blocks), dtype=np.int64)
    ring_len = np.zeros(window, dtype=np.int64)
    documents = np.full((cfg.num_system_prompts, cfg.num_documents), -1, dtype=np.int64)
    # [next_id, conversations held, next ring slot]
    state = np.array([cfg.num_system_prompts * cfg.system_prompt_blocks, 0, 0], dtype=np.int64)
    done = 0
    chunk = 0
    while done < cfg.num_requests:
        count = min(chunk_requests, cfg.num_requests - done)
        seed = (cfg.seed * 1_000_003 + chunk) % (2**32)
        ids, lengths = _stream_chunk(count, seed, ring, ring_len, documents, state, cfg.system_prompt_blocks,
                                     cfg.document_blocks, cfg.document_probability, cfg.zipf_exponent,
                                     cfg.followup_probability, cfg.recency_p, cfg.mean_new_blocks)
        done += count
        chunk += 1
        yield ids, lengths


@jit
def _stream_chunk(count, seed, ring, ring_len, documents, state, system_blocks, document_blocks,
                  document_probability, zipf_exponent, followup_probability, recency_p, mean_new_blocks):
    """`count` requests of the synthetic process (synthetic_block_stream)."""
    np.random.seed(seed)
    window, max_blocks = ring.shape
    num_systems, num_documents = documents.shape
    next_id, held, head = state[0], state[1], state[2]
    out = np.empty(max(1, count * 48), dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    n = 0
    for i in range(count):
        new = 1 + np.random.geometric(1.0 / mean_new_blocks)
        if n + max_blocks > out.shape[0]:
            grown = np.empty(2 * out.shape[0] + max_blocks, dtype=np.int64)
            for q in range(n):  # not grown[:n] = out[:n]: see cluster/approx_index.py `sizes`
                grown[q] = out[q]
            out = grown
        conv = -1
        if held > 0 and np.random.random() < followup_probability:
            k = min(np.random.geometric(recency_p), held)
            conv = (head - k) % window
            if ring_len[conv] + new > max_blocks:
                conv = -1
        if conv >= 0:  # follow-up: the conversation so far + new blocks
            m = ring_len[conv]
            for j in range(new):
                ring[conv, m + j] = next_id + j
            next_id += new
            ring_len[conv] = m + new
        else:  # new conversation: system prompt, maybe a document, new blocks
            conv = head
            head = (head + 1) % window
            held = min(held + 1, window)
            s = (np.random.zipf(zipf_exponent) - 1) % num_systems
            m = 0
            for j in range(min(system_blocks, max_blocks)):
                ring[conv, m] = s * system_blocks + j
                m += 1
            if np.random.random() < document_probability:
                d = (np.random.zipf(zipf_exponent) - 1) % num_documents
                if documents[s, d] < 0:
                    documents[s, d] = next_id
                    next_id += document_blocks
                for j in range(document_blocks):
                    if m < max_blocks:
                        ring[conv, m] = documents[s, d] + j
                        m += 1
            for j in range(new):
                if m < max_blocks:
                    ring[conv, m] = next_id + j
                    m += 1
            next_id += new
            ring_len[conv] = m
        m = ring_len[conv]
        for q in range(m):
            out[n + q] = ring[conv, q]
        n += m
        lengths[i] = m
    state[0], state[1], state[2] = next_id, held, head
    return out[:n].copy(), lengths
