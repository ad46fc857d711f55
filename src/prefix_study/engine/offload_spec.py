"""vLLM's KV offloading with its CPU tier, inside the CPU engine (issue 18.5).

vLLM 0.32's `OffloadingConnector` runs the connector scheduler and
`CPUOffloadingManager` (LRU or ARC, `vllm/v1/kv_offload/cpu/`) in the
scheduler, and a worker that copies blocks between GPU memory and host
memory. Its stock `CPUOffloadingSpec.get_worker` refuses every platform but
CUDA and XPU (the copies run on device streams). `CPUTensorOffloadingSpec` is
that spec with one change: its worker copies blocks between the engine's KV
cache tensors (on the CPU) and host tensors with plain tensor copies, done
when submitted. Everything that decides what is stored, looked up, loaded and
evicted is vLLM's own code. vLLM loads the spec out of tree through
`kv_connector_extra_config` (`spec_name`, `spec_module_path`):
`kv_transfer_config(...)` builds that config.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from vllm.v1.kv_offload.base import (
    CanonicalKVCaches,
    GPULoadStoreSpec,
    LoadStoreSpec,
    OffloadingWorker,
    TransferResult,
)
from vllm.v1.kv_offload.cpu.spec import CPUOffloadingSpec

#: Policies vLLM's CPUOffloadingManager has built in (cpu/policies/factory.py).
CPU_TIER_POLICIES = ("lru", "arc")


class CPUTensorOffloadingWorker(OffloadingWorker):
    """Copies KV blocks between the engine's block tensors and host tensors of
    `num_chunks` chunks of `blocks_per_chunk` blocks each (the layout of
    vLLM's `CPUOffloadingWorker`, direct layout), synchronously."""

    def __init__(self, kv_caches: CanonicalKVCaches, blocks_per_chunk: int, num_chunks: int):
        self.blocks_per_chunk = int(blocks_per_chunk)
        self.block_tensors: list[torch.Tensor] = []
        self.host_tensors: list[torch.Tensor] = []
        for t in kv_caches.tensors:
            blocks = t.tensor.view(torch.int8).view(-1, t.page_size_bytes)
            self.block_tensors.append(blocks)
            self.host_tensors.append(torch.zeros((num_chunks, self.blocks_per_chunk, t.page_size_bytes),
                                                 dtype=torch.int8))
        # Tensors of each KV cache group (a group's layers may share one tensor).
        self.group_tensors = [sorted({ref.tensor_idx for ref in refs}) for refs in kv_caches.group_data_refs]
        self._finished: list[TransferResult] = []

    def _slots(self, spec: GPULoadStoreSpec, chunks: np.ndarray) -> list[tuple[int, list[int], np.ndarray, np.ndarray]]:
        """Per group: (group, tensors, block ids, (chunk, slot) of each block).
        A group's blocks are logically contiguous from block_indices[g]; its
        first chunk may be entered part way (vLLM's `block_indices` rule)."""
        out = []
        block_offset = chunk_offset = 0
        for g, (size, first) in enumerate(zip(spec.group_sizes, spec.block_indices)):
            if size == 0:
                continue
            blocks = spec.block_ids[block_offset:block_offset + size]
            logical = (int(first) % self.blocks_per_chunk) + np.arange(size)
            used = -(-int(logical[-1] + 1) // self.blocks_per_chunk)
            group_chunks = chunks[chunk_offset:chunk_offset + used]
            out.append((g, self.group_tensors[g], blocks,
                        np.stack([group_chunks[logical // self.blocks_per_chunk], logical % self.blocks_per_chunk])))
            block_offset += size
            chunk_offset += used
        if block_offset != len(spec.block_ids) or chunk_offset != len(chunks):
            raise ValueError(f"offload transfer: {len(spec.block_ids)} blocks and {len(chunks)} chunks do not "
                             f"match groups {list(spec.group_sizes)} from {list(spec.block_indices)}")
        return out

    def _copy(self, job_id: int, spec: GPULoadStoreSpec, chunks: np.ndarray, store: bool) -> bool:
        t0 = time.perf_counter()
        nbytes = 0
        for _, tensors, blocks, (chunk, slot) in self._slots(spec, np.asarray(chunks, dtype=np.int64)):
            index = torch.from_numpy(np.asarray(blocks, dtype=np.int64))
            c, s = torch.from_numpy(chunk), torch.from_numpy(slot)
            for t in tensors:
                if store:
                    self.host_tensors[t][c, s] = self.block_tensors[t][index]
                else:
                    self.block_tensors[t][index] = self.host_tensors[t][c, s]
                nbytes += len(blocks) * self.block_tensors[t].shape[1]
        self._finished.append(TransferResult(job_id=job_id, success=True, transfer_size=nbytes,
                                             transfer_time=time.perf_counter() - t0))
        return True

    def submit_store(self, job_id: int, src_spec: GPULoadStoreSpec, dst_spec: LoadStoreSpec) -> bool:
        return self._copy(job_id, src_spec, dst_spec.block_ids, store=True)

    def submit_load(self, job_id: int, src_spec: LoadStoreSpec, dst_spec: GPULoadStoreSpec) -> bool:
        return self._copy(job_id, dst_spec, src_spec.block_ids, store=False)

    def get_finished(self) -> list[TransferResult]:
        done, self._finished = self._finished, []
        return done

    def wait(self, job_ids: set[int]) -> None:
        return  # copies finish when submitted


class CPUTensorOffloadingSpec(CPUOffloadingSpec):
    """vLLM's CPU offloading spec (its manager and options) with a worker that
    runs on the CPU platform. `num_cpu_chunks` in the extra config sizes the
    tier in chunks (vLLM's own rule, cpu_bytes_to_use // bytes per chunk
    rounded up to the page size, gives that count for the matching bytes)."""

    def __init__(self, config: Any):
        chunks = config.extra_config.get("num_cpu_chunks")
        super().__init__(config)
        if chunks is not None:
            if int(chunks) < 0:
                raise ValueError(f"num_cpu_chunks={chunks!r}: a non-negative number of chunks")
            self.num_chunks = int(chunks)

    def get_worker(self, kv_caches: CanonicalKVCaches) -> OffloadingWorker:
        if self._worker is None:
            self._worker = CPUTensorOffloadingWorker(kv_caches, self.blocks_per_chunk, self.num_chunks)
        return self._worker


def kv_transfer_config(cpu_chunks: int, policy: str, blocks_per_chunk: int = 1,
                       **extra: Any) -> dict[str, Any]:
    """`kv_transfer_config` for vLLM: the OffloadingConnector with this
    module's spec and a CPU tier of `cpu_chunks` chunks of `blocks_per_chunk`
    GPU blocks under `policy` (vLLM's `offload_prompt_only` default stays)."""
    if policy not in CPU_TIER_POLICIES:
        raise ValueError(f"CPU tier policy {policy!r}: vLLM's CPUOffloadingManager has {list(CPU_TIER_POLICIES)}")
    return {
        "kv_connector": "OffloadingConnector",
        "kv_role": "kv_both",
        "kv_connector_extra_config": {
            "spec_name": CPUTensorOffloadingSpec.__name__,
            "spec_module_path": __name__,
            "cpu_bytes_to_use": 1,  # required by vLLM's spec; num_cpu_chunks sizes the tier
            "num_cpu_chunks": int(cpu_chunks),
            "eviction_policy": policy,
            "blocks_per_chunk": int(blocks_per_chunk),
            **extra,
        },
    }
