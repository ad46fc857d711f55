"""The tier replay against the real engine (issue 18.5): vLLM's
OffloadingConnector and CPUOffloadingManager run inside the CPU engine
(engine/offload_spec.py), and per request the tokens vLLM served from GPU
memory and from its CPU tier equal the tier replay's, for LRU and ARC at two
binding CPU capacities under a binding GPU capacity. A replay with the CPU
capacity off by one chunk, or with the other policy, differs.

One engine for the whole module (session cache); the CPU tier is swapped
between runs (engine/offload_run.py:set_cpu_tier). The tier loop compiles
for (lru, lru), shared with tests/test_tiers.py, and (lru, vllm_arc)."""

from __future__ import annotations

import random
from functools import cache

import pytest

from prefix_study.config.compose import compose_config
from prefix_study.engine.offload_run import run_offloaded, set_cpu_tier
from prefix_study.engine.runtime import CpuOffload
from prefix_study.tiers.ground_truth import compare, prompt_trace, vllm_cpu_hierarchy
from prefix_study.tiers.replay import tier_replay

pytestmark = pytest.mark.engine

BS = 32
GPU_BLOCKS = 12          # 11 usable (vLLM's null block): binds for 5 conversations
HOST_CHUNKS = 32         # the worker's host tensors; set_cpu_tier uses fewer


def conversations(seed: int = 1, convs: int = 5, turns: int = 4) -> list[list[int]]:
    """Round-robin turns of `convs` conversations sharing a 70-token system
    prompt, each turn the previous prompt plus 30-60 tokens; no prompt is a
    whole number of blocks (vLLM's connector would then load the block the
    GPU lookup leaves out: see docs/architecture.md)."""
    rng = random.Random(seed)
    system = [rng.randrange(5000) for _ in range(70)]
    prompts = [system + [rng.randrange(5000) for _ in range(rng.randrange(10, 60))] for _ in range(convs)]
    out = []
    for _ in range(turns):
        for c in range(convs):
            if len(prompts[c]) % BS == 0:
                prompts[c].append(rng.randrange(5000))
            out.append(list(prompts[c]))
            prompts[c] = prompts[c] + [rng.randrange(5000) for _ in range(rng.randrange(30, 60))]
    return out


@pytest.fixture(scope="module")
def offload_engine(engine_factory):
    return engine_factory(BS, capacity_blocks=GPU_BLOCKS, max_model_len=320, max_num_seqs=1,
                          cpu_offload=CpuOffload(chunks=HOST_CHUNKS, policy="lru"))


@cache
def vllm_cpu_config():
    return compose_config(["tiers=vllm_cpu", f"sweep.block_sizes=[{BS}]"])


def replay(trace, chunks: int, policy: str):
    return tier_replay(trace, vllm_cpu_hierarchy(vllm_cpu_config(), chunks, policy, BS), "lru", GPU_BLOCKS - 1)


@pytest.mark.parametrize("chunks", [12, 16])
def test_tier_replay_equals_vllm_cpu_offloading(offload_engine, chunks):
    prompts = conversations()
    trace = prompt_trace(prompts, BS)
    unbounded = replay(trace, 10_000, "lru").served_tokens()["cpu"]
    for policy, other in (("lru", "arc"), ("arc", "lru")):
        set_cpu_tier(offload_engine, chunks, policy)
        engine = run_offloaded(offload_engine, prompts)
        assert offload_engine.events.frame().filter(event="removed").height > 0, "GPU capacity did not bind"
        table = compare(engine, replay(trace, chunks, policy))
        assert table["match"].all(), (policy, chunks, table.filter(~table["match"]))
        cpu = int(table["engine_cpu_tokens"].sum())
        assert 0 < cpu < unbounded, (policy, chunks, cpu, unbounded)  # served, and the capacity binds
        # A broken replay fails the comparison: one chunk too few, or the other policy.
        assert not compare(engine, replay(trace, chunks - 1, policy))["match"].all(), (policy, chunks)
        assert not compare(engine, replay(trace, chunks, other))["match"].all(), (policy, chunks)


def test_cpu_tensor_worker_round_trips_blocks():
    """The spec's worker (no engine): blocks stored into chunks of two and
    loaded back into other blocks keep their bytes, a first chunk entered
    part way (block_indices) included."""
    import torch
    from vllm.v1.kv_offload.base import (CanonicalKVCacheRef, CanonicalKVCaches, CanonicalKVCacheTensor,
                                         GPULoadStoreSpec)
    from vllm.v1.kv_offload.cpu.common import CPULoadStoreSpec

    from prefix_study.engine.offload_spec import CPUTensorOffloadingWorker

    blocks = torch.randint(-128, 127, (10, 64), dtype=torch.int8)
    caches = CanonicalKVCaches([CanonicalKVCacheTensor(blocks, 64)], [[CanonicalKVCacheRef(0, 64)]])
    worker = CPUTensorOffloadingWorker(caches, blocks_per_chunk=2, num_chunks=4)
    original = blocks.clone()
    # Request blocks 1..3 (GPU blocks 5, 7, 2): chunk 3 gets slot 1 (block 1), chunk 0 both (blocks 2, 3).
    assert worker.submit_store(0, GPULoadStoreSpec([5, 7, 2], [3], [1]), CPULoadStoreSpec([3, 0]))
    host = worker.host_tensors[0]
    assert torch.equal(host[3, 1], original[5]) and torch.equal(host[0], original[[7, 2]])
    blocks[[5, 7, 2]] = 0
    assert worker.submit_load(1, CPULoadStoreSpec([3, 0]), GPULoadStoreSpec([8, 9, 4], [3], [1]))
    assert torch.equal(blocks[[8, 9, 4]], original[[5, 7, 2]])
    assert [r.job_id for r in worker.get_finished()] == [0, 1] and worker.get_finished() == []
