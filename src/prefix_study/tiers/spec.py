"""A tier hierarchy in the replay's units: capacities in blocks of the trace's
block size, chunks in blocks, bandwidths in bytes/s of the named GPU's links,
bytes per block of the named model.

`hierarchy` is the one home of the tier checks: config/validate.py calls it at
compose time (each sweep block size), the replay when it runs, and a bad value
raises TierConfigError naming the key (`tiers.tiers[i].chunk_tokens`, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from prefix_study.config.schema import LOAD_POLICIES, MAX_LOWER_TIERS, WRITE_POLICIES
from prefix_study.cost.capacity import capacity_blocks
from prefix_study.cost.profiles import HardwareProfile, ModelProfile


#: vLLM's CPU-tier ARC (tiers/vllm_arc.py): a policy of the tiers below GPU
#: memory only, outside the replay's policy registry, written through.
VLLM_ARC = "vllm_arc"


class TierConfigError(ValueError):
    """A `tiers` config value the tier replay cannot run (the message names the key)."""


@dataclass(frozen=True)
class TierSpec:
    """One tier below GPU memory, resolved for one block size."""

    name: str
    capacity_blocks: int
    chunk_blocks: int
    policy: str
    write_policy: str
    write_hits: int
    read_bytes_s: float
    write_bytes_s: float
    latency_s: float
    min_load_tokens: int
    links: tuple[str, ...]
    scope: str


@dataclass(frozen=True)
class Hierarchy:
    """GPU memory (its capacity and policy may be left to the caller: None)
    and the tiers below it, top down."""

    name: str
    load_policy: str
    block_size: int
    block_bytes: int
    gpu_capacity_blocks: Optional[int]
    gpu_policy: Optional[str]
    lower: tuple[TierSpec, ...]

    @property
    def tier_names(self) -> tuple[str, ...]:
        return ("gpu", *(t.name for t in self.lower))


def has_lower_tiers(tiers_cfg: Any) -> bool:
    """Whether the `tiers` config has a tier below GPU memory: only then do the
    tiers stage run and the cluster's replicas take tiers (under `gpu_only`
    both would repeat today's single-tier replay)."""
    return len(tiers_cfg.tiers) > 1


def _fail(key: str, value: Any, allowed: str) -> None:
    raise TierConfigError(f"{key}={value!r} is invalid: allowed {allowed}")


def link_bandwidths(hardware: HardwareProfile) -> dict[str, tuple[Optional[float], Optional[float], str]]:
    """(read bytes/s, write bytes/s, hardware key) of each link (schema TierLink)."""
    return {
        "pcie": (hardware.host_link_bytes_s, hardware.host_link_bytes_s, "hardware.host_link_bytes_s"),
        "nvme": (hardware.nvme_read_bytes_s, hardware.nvme_write_bytes_s,
                 "hardware.nvme_read_bytes_s/nvme_write_bytes_s"),
        "network": (hardware.network_bytes_s, hardware.network_bytes_s, "hardware.network_bytes_s"),
    }


def _bandwidth(key: str, override: Any, links: list[str], which: int, hardware: HardwareProfile) -> float:
    if override is not None:
        if not (math.isfinite(float(override)) and float(override) > 0):
            _fail(key, override, "a positive number of bytes/s (or null: the slowest link's)")
        return float(override)
    table = link_bandwidths(hardware)
    values = []
    for link in links:
        value = table[link][which]
        if value is None or not (math.isfinite(value) and value > 0):
            _fail(key, override, f"a positive number: link {link!r} needs a positive {table[link][2]} "
                  f"in hardware profile {hardware.name!r} (got {value})")
        values.append(float(value))
    return min(values)


def hierarchy(cfg: Any, hardware: HardwareProfile, model: ModelProfile, block_size: int) -> Hierarchy:
    """The `tiers` config node resolved at `block_size` tokens per block."""
    from prefix_study.registry import online_policy_names

    block_size = int(block_size)
    load_policy = str(cfg.load_policy)
    if load_policy not in LOAD_POLICIES:
        _fail("tiers.load_policy", load_policy, f"one of {list(LOAD_POLICIES)}")
    tiers = list(cfg.tiers)
    if not tiers:
        _fail("tiers.tiers", [], "a list whose first entry is GPU memory")
    if len(tiers) - 1 > MAX_LOWER_TIERS:
        _fail("tiers.tiers", [str(t.name) for t in tiers],
              f"GPU memory and at most {MAX_LOWER_TIERS} tiers below it (tiers/kernel.py)")
    names = [str(t.name) for t in tiers]
    if len(set(names)) != len(names):
        _fail("tiers.tiers", names, "distinct tier names")
    policies = online_policy_names()
    resolved: list[TierSpec] = []
    gpu_capacity: Optional[int] = None
    gpu_policy: Optional[str] = None
    above_chunk = 1
    for i, t in enumerate(tiers):
        key = f"tiers.tiers[{i}]"
        top = i == 0
        write_policy = str(t.write_policy)
        if write_policy not in WRITE_POLICIES:
            _fail(f"{key}.write_policy", write_policy, f"one of {list(WRITE_POLICIES)}")
        if top and write_policy == "write_back":
            _fail(f"{key}.write_policy", write_policy,
                  "write_through on the top tier (GPU memory is written by compute; write_back takes "
                  "the blocks the tier above evicts, and nothing is above it)")
        policy = None if t.policy is None else str(t.policy)
        allowed = policies if top else [*policies, VLLM_ARC]
        if policy is None and not top:
            _fail(f"{key}.policy", None, f"an online policy from {allowed}")
        if policy is not None and policy not in allowed:
            _fail(f"{key}.policy", policy, f"an online policy from {allowed}")
        if policy == VLLM_ARC and write_policy != "write_through":
            _fail(f"{key}.write_policy", write_policy, f"write_through with policy {VLLM_ARC} (vLLM's store path)")
        capacity = t.capacity
        if capacity is None:
            blocks = None
        else:
            if not (math.isfinite(float(capacity)) and float(capacity) >= 0):
                _fail(f"{key}.capacity", capacity, "a non-negative capacity (or null: unbounded)")
            blocks = capacity_blocks(float(capacity), str(t.capacity_unit), block_size, model)
        chunk = t.chunk_tokens
        if chunk is None:
            chunk_blocks = 1
        else:
            if not (int(chunk) > 0 and int(chunk) % block_size == 0):
                _fail(f"{key}.chunk_tokens", chunk, f"a positive multiple of the block size {block_size} "
                      "(or null: one block)")
            chunk_blocks = int(chunk) // block_size
        if top:
            if chunk_blocks != 1:
                _fail(f"{key}.chunk_tokens", chunk, "null on GPU memory (it holds blocks)")
            if list(t.links):
                _fail(f"{key}.links", list(t.links), "[] on GPU memory (the top tier)")
            gpu_capacity, gpu_policy = blocks, policy
            continue
        if write_policy == "write_back" and chunk_blocks != above_chunk:
            _fail(f"{key}.chunk_tokens", chunk, f"the chunk of the tier above ({above_chunk * block_size} tokens): "
                  "write_back stores the units that tier evicts")
        if int(t.write_hits) < 1:
            _fail(f"{key}.write_hits", t.write_hits, "a positive number of hits")
        if int(t.min_load_tokens) < 0:
            _fail(f"{key}.min_load_tokens", t.min_load_tokens, "a non-negative number of tokens")
        latency = float(t.latency_s)
        if not (math.isfinite(latency) and latency >= 0):
            _fail(f"{key}.latency_s", t.latency_s, "a non-negative number of seconds")
        links = [str(link) for link in t.links]
        if not links:
            _fail(f"{key}.links", links, "the links of the path to GPU memory (pcie, nvme, network)")
        resolved.append(TierSpec(
            name=str(t.name), capacity_blocks=-1 if blocks is None else blocks, chunk_blocks=chunk_blocks,
            policy=str(policy), write_policy=write_policy, write_hits=int(t.write_hits),
            read_bytes_s=_bandwidth(f"{key}.read_bytes_s", t.read_bytes_s, links, 0, hardware),
            write_bytes_s=_bandwidth(f"{key}.write_bytes_s", t.write_bytes_s, links, 1, hardware),
            latency_s=latency, min_load_tokens=int(t.min_load_tokens), links=tuple(links), scope=str(t.scope)))
        above_chunk = chunk_blocks
    return Hierarchy(str(cfg.name), load_policy, block_size, model.kv_bytes_per_block(block_size),
                     gpu_capacity, gpu_policy, tuple(resolved))
