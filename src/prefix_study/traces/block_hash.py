"""vLLM's chained prefix-cache block hash, without importing vLLM.

A traces job only needs vLLM's `hash_block_tokens` with the `sha256` hash
function; importing vLLM for it costs ~10 s per job. These few lines restate
the definitions of vLLM 0.32 (vllm/utils/hashing.py `sha256`,
vllm/v1/core/kv_cache_utils.py `hash_block_tokens`, `init_none_hash`):

    sha256(obj)            = hashlib.sha256(pickle.dumps(obj, HIGHEST_PROTOCOL)).digest()
    NONE_HASH              = sha256(none_hash_seed)
    hash_block_tokens(...) = sha256((parent or NONE_HASH, tuple(tokens), extra_keys))

tests/test_block_hash.py imports vLLM once and proves equality on random
token lists at several block sizes and seeds.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Any, Sequence

from prefix_study.traces.schema import PREFIX_HASH_ALGO

_MASK64 = (1 << 64) - 1
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def sha256(obj: Any) -> bytes:
    """vLLM's `sha256`: SHA-256 of the object's highest-protocol pickle."""
    return hashlib.sha256(pickle.dumps(obj, protocol=_PROTOCOL)).digest()


def hash_block_tokens(parent: bytes | None, tokens: Sequence[int], none_hash: bytes,
                      extra_keys: tuple[Any, ...] | None = None) -> bytes:
    """vLLM's `hash_block_tokens(sha256, parent, tokens, extra_keys)`; `none_hash`
    stands in for vLLM's process-wide NONE_HASH (used when there is no parent)."""
    return sha256((parent or none_hash, tuple(tokens), extra_keys))


def chained_block_hashes(token_ids: Sequence[int], block_size: int, none_hash_seed: str,
                         algo: str = PREFIX_HASH_ALGO) -> list[int]:
    """uint64 hashes of every full block, chained from NONE_HASH as vLLM does
    (the low 64 bits of the big-endian digest, as the KV events carry them)."""
    if algo != "sha256":
        raise ValueError(f"prefix hash algorithm {algo!r}: only 'sha256' is implemented")
    parent = none_hash = sha256(none_hash_seed)
    tokens = list(token_ids)
    out = []
    for start in range(0, len(tokens) - block_size + 1, block_size):
        parent = hash_block_tokens(parent, tokens[start:start + block_size], none_hash)
        out.append(int.from_bytes(parent, "big") & _MASK64)
    return out
