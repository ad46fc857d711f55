"""Run requests through an engine with vLLM's CPU tier (engine/offload_spec.py)
and record, per request, the tokens vLLM served from GPU memory and from the
CPU tier: the ground truth of the tier replay (issue 18.5).

The two numbers are what vLLM's scheduler hands the connector and what the
connector answers: `get_num_new_matched_tokens(request, local)` gets the GPU
prefix hit (`local`, block aligned), and `update_state_after_alloc(request,
blocks, external)` the tokens the scheduler accepted from the CPU tier.

Requests run one at a time, and the engine steps until the connector has no
transfer left (vLLM's scheduler keeps stepping while it has push work), so
every store of a request completes before the next request is looked up:
the order in which the tier replay applies a request's writes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from prefix_study.engine.runtime import Engine


@dataclass(frozen=True)
class OffloadedRequest:
    """One request of an offloading run: prompt tokens, the tokens vLLM's GPU
    prefix cache served, the tokens loaded from the CPU tier, and vLLM's own
    `num_cached_tokens` (their sum)."""

    prompt_tokens: int
    gpu_tokens: int
    cpu_tokens: int
    num_cached_tokens: int


@contextmanager
def worker_connector(engine: Engine) -> Iterator[None]:
    """Install the engine's worker-side connector as vLLM's process-wide one
    while the engine steps (engine/runtime.py keeps it out otherwise)."""
    from vllm.distributed.kv_transfer import kv_transfer_state

    saved = kv_transfer_state._KV_CONNECTOR_AGENT
    kv_transfer_state._KV_CONNECTOR_AGENT = engine.kv_worker_connector
    try:
        yield
    finally:
        kv_transfer_state._KV_CONNECTOR_AGENT = saved


def connector(engine: Engine) -> Any:
    conn = engine.scheduler.connector
    if conn is None or getattr(conn, "connector_scheduler", None) is None:
        raise ValueError("the engine has no OffloadingConnector: build it with EngineSpec.cpu_offload")
    return conn


def set_cpu_tier(engine: Engine, chunks: int, policy: str) -> None:
    """Replace the connector's CPUOffloadingManager by an empty one of
    `chunks` chunks under `policy`, built as vLLM's CPUOffloadingSpec.get_manager
    builds it (so one engine serves several tiers). The worker's host tensors
    must hold `chunks`: the engine's EngineSpec.cpu_offload.chunks bounds it."""
    from vllm.v1.kv_offload.cpu.manager import CPUOffloadingManager

    from prefix_study.engine.offload_spec import CPU_TIER_POLICIES

    built = engine.spec.cpu_offload
    if built is None or not 0 <= chunks <= built.chunks:
        raise ValueError(f"CPU tier of {chunks} chunks: the engine's host tensors hold "
                         f"{None if built is None else built.chunks}")
    if policy not in CPU_TIER_POLICIES:
        raise ValueError(f"CPU tier policy {policy!r}: vLLM's CPUOffloadingManager has {list(CPU_TIER_POLICIES)}")
    sched = connector(engine).connector_scheduler
    if sched._jobs or sched._req_status:
        raise RuntimeError("the connector has transfers or requests in flight")
    old = sched.manager
    sched.manager = CPUOffloadingManager(num_chunks=chunks, cache_policy=policy,
                                         enable_events=old.events is not None,
                                         store_threshold=old.store_threshold,
                                         max_tracker_size=old.max_tracker_size)


def run_offloaded(engine: Engine, prompts: Sequence[Sequence[int]]) -> list[OffloadedRequest]:
    """Run `prompts` one at a time (each to completion, transfers drained)
    from an empty GPU cache; the CPU tier is whatever `set_cpu_tier` left."""
    from prefix_study.engine.simulator import simulator_params

    conn = connector(engine)
    seen: dict[str, dict[str, int]] = {}
    lookup = conn.get_num_new_matched_tokens
    after_alloc = conn.update_state_after_alloc

    def get_num_new_matched_tokens(request: Any, num_computed_tokens: int):
        seen[request.request_id] = {"gpu": int(num_computed_tokens)}
        return lookup(request, num_computed_tokens)

    def update_state_after_alloc(request: Any, blocks: Any, num_external_tokens: int):
        # The first allocation after a lookup takes its hit; vLLM calls this
        # again (with 0) when the request resumes after its load.
        seen[request.request_id].setdefault("cpu", int(num_external_tokens))
        return after_alloc(request, blocks, num_external_tokens)

    conn.get_num_new_matched_tokens = get_num_new_matched_tokens
    conn.update_state_after_alloc = update_state_after_alloc
    llm_engine = engine.llm.llm_engine
    out = []
    try:
        with worker_connector(engine):
            engine.reset()
            for i, prompt in enumerate(prompts):
                internal = llm_engine.add_request(f"offload-{i}", {"prompt_token_ids": list(prompt)},
                                                  simulator_params("echo", len(prompt), None, max_tokens=1))
                finished = []
                while engine.scheduler.has_requests():
                    finished += [o for o in llm_engine.step() if o.finished]
                (result,) = finished
                got = seen.pop(internal)  # the scheduler's request id
                out.append(OffloadedRequest(prompt_tokens=len(prompt), gpu_tokens=got["gpu"],
                                            cpu_tokens=got.get("cpu", 0),
                                            num_cached_tokens=int(result.num_cached_tokens or 0)))
    finally:
        del conn.get_num_new_matched_tokens, conn.update_state_after_alloc
    return out
