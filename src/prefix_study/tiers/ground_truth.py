"""The tier replay against vLLM's own CPU tier, request for request (issue 18.5).

The engine side is engine/offload_run.py (vLLM's OffloadingConnector and
CPUOffloadingManager inside the CPU engine); this module builds the same run
for the tier replay: the prompts' block trace, the `vllm_cpu` preset at the
engine's capacities, and the per-request comparison of tokens served from
GPU memory and from the CPU tier.

How vLLM's settings map to the preset (vLLM 0.32, read from its sources):
- GPU memory: engine capacity C blocks is C - 1 replay blocks (the null
  block, replay/engine_capacity.py), prefix LRU.
- CPU tier: `blocks_per_chunk` GPU blocks per chunk (the extra config's
  `block_size` must be a multiple of the GPU block size), capacity in chunks,
  `eviction_policy` lru (the registry's `lru`) or arc (`vllm_arc`).
- Stores and recency: the tier replay's write_through is vLLM's store path
  (tiers/kernel.py, step 4): chunks of looked-up blocks only
  (`offload_prompt_only`, vLLM's default), offered while the request runs,
  touched tail first when it ends. The engine runs one request at a time,
  so every store completes before the next lookup, as in the replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from prefix_study.replay.trace import BlockTrace
    from prefix_study.tiers.replay import TierReplay
    from prefix_study.tiers.spec import Hierarchy


#: The tier replay's policy for each `eviction_policy` of vLLM's CPU tier:
#: vLLM's LRU is the registry's `lru`, its ARC a variant (tiers/vllm_arc.py).
REPLAY_POLICY = {"lru": "lru", "arc": "vllm_arc"}


def prompt_trace(prompts: Sequence[Sequence[int]], block_size: int) -> "BlockTrace":
    """The block trace of `prompts` run with one output token each
    (engine/offload_run.py): each prompt's full blocks, chained as vLLM's
    block hashes chain; a block past vLLM's GPU lookup limit (the last token
    is always computed) is not looked up; a prompt that ends inside a block
    holds that partial block in GPU memory while it runs (PARTIAL_TAIL)."""
    from prefix_study.replay.synthetic import trace_from_requests
    from prefix_study.replay.trace import encode_trace

    requests, lookup, partial = [], [], []
    for prompt in prompts:
        full = len(prompt) // block_size
        blocks = [hash(tuple(prompt[b * block_size:(b + 1) * block_size])) & 0x7FFF_FFFF_FFFF_FFFF
                  for b in range(full)]
        requests.append(blocks)
        lookup.append([b < (len(prompt) - 1) // block_size for b in range(full)])
        partial += [len(prompt) % block_size != 0] * full
    frame = trace_from_requests(requests, workload="offload", lookup=lookup)
    return encode_trace(frame.with_columns(pl.Series("partial_tail", partial, dtype=pl.Boolean)))


def vllm_cpu_hierarchy(cfg: Any, cpu_chunks: int, policy: str, block_size: int,
                       blocks_per_chunk: int = 1) -> "Hierarchy":
    """The `vllm_cpu` preset of a composed config (`tiers=vllm_cpu`) with its
    CPU tier set as the engine's (`policy`: vLLM's eviction_policy, or a
    replay policy name), resolved and checked by tiers/spec.py."""
    from omegaconf import OmegaConf

    from prefix_study.cost import HardwareProfile, ModelProfile
    from prefix_study.tiers.spec import hierarchy

    if str(cfg.tiers.name) != "vllm_cpu":
        raise ValueError(f"vllm_cpu_hierarchy needs a config composed with tiers=vllm_cpu, got {cfg.tiers.name!r}")
    tiers = OmegaConf.to_container(cfg.tiers, enum_to_str=True)
    tiers["tiers"][1].update(capacity=cpu_chunks * blocks_per_chunk, capacity_unit="blocks",
                             policy=REPLAY_POLICY.get(policy, policy),
                             chunk_tokens=blocks_per_chunk * block_size)
    return hierarchy(OmegaConf.create(tiers), HardwareProfile.from_config(cfg.hardware),
                     ModelProfile.from_config(cfg.model), block_size)


def compare(engine_requests: Sequence, replay: "TierReplay") -> pl.DataFrame:
    """One row per request: tokens served from GPU memory and from the CPU
    tier by vLLM (`engine_requests`: engine/offload_run.OffloadedRequest) and
    by the tier replay, and `match` (both equal)."""
    bs = replay.hierarchy.block_size
    if len(engine_requests) != replay.served_blocks.shape[0]:
        raise ValueError(f"{len(engine_requests)} engine requests, {replay.served_blocks.shape[0]} replayed")
    served = replay.served_blocks * bs
    cpu = served[:, 1] if served.shape[1] > 1 else np.zeros(served.shape[0], dtype=np.int64)
    frame = pl.DataFrame({
        "request": np.arange(len(engine_requests)),
        "prompt_tokens": [r.prompt_tokens for r in engine_requests],
        "engine_gpu_tokens": [r.gpu_tokens for r in engine_requests],
        "replay_gpu_tokens": served[:, 0],
        "engine_cpu_tokens": [r.cpu_tokens for r in engine_requests],
        "replay_cpu_tokens": cpu,
    })
    return frame.with_columns(
        ((pl.col("engine_gpu_tokens") == pl.col("replay_gpu_tokens"))
         & (pl.col("engine_cpu_tokens") == pl.col("replay_cpu_tokens"))).alias("match"))
