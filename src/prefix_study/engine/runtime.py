"""Build an in-process vLLM V1 engine on the CPU and observe its KV cache.

Only public extension points are used: engine arguments, a custom logits
processor (the token simulator), and the scheduler's KV-event publisher, which
is replaced by an in-process recorder instead of a ZMQ socket. A thin wrapper
around the KV cache manager's prefix lookup records, for each request, how
many KV events had been emitted when it was looked up, so the consistency of
`num_cached_tokens` with the event stream can be checked.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from prefix_study import env
from prefix_study.traces.schema import KV_EVENT_SCHEMA, PREFIX_HASH_ALGO, as_uint64

# Must be set before vLLM is imported anywhere in the process.
env.apply()


@dataclass(frozen=True)
class CpuOffload:
    """vLLM's KV offloading to a CPU tier (its OffloadingConnector and
    CPUOffloadingManager; the worker is engine/offload_spec.py's): `chunks`
    chunks of `blocks_per_chunk` blocks under `policy` ("lru" or "arc")."""

    chunks: int
    policy: str
    blocks_per_chunk: int = 1


@dataclass(frozen=True)
class EngineSpec:
    """Everything that shapes one engine instance.

    No defaults here: they live in the schema (`config.schema.EngineConfig`);
    build a spec with `from_config`.
    """

    model_dir: str
    block_size: int
    prefix_caching: bool
    capacity_blocks: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    enforce_eager: bool
    seed: int
    # In-engine eviction policy (engine/eviction.py) and, for wa_lru, the
    # cache-friendly workloads (mix.cache_friendly).
    eviction: str
    cache_friendly: tuple[str, ...] = ()
    # A CPU tier below GPU memory through vLLM's OffloadingConnector (issue 18.5).
    cpu_offload: CpuOffload | None = None

    @classmethod
    def from_config(cls, engine_cfg: Any, model_dir: str | Path, block_size: int,
                    cache_friendly: Sequence[str] = ()) -> "EngineSpec":
        """From `engine` of a composed config, or an `EngineConfig(...)` instance;
        `cache_friendly`: `mix.cache_friendly`, which only `wa_lru` reads."""
        return cls(
            model_dir=str(model_dir),
            block_size=int(block_size),
            prefix_caching=bool(engine_cfg.prefix_caching),
            capacity_blocks=int(engine_cfg.capacity_blocks),
            max_model_len=int(engine_cfg.max_model_len),
            max_num_seqs=int(engine_cfg.max_num_seqs),
            max_num_batched_tokens=int(engine_cfg.max_num_batched_tokens),
            enforce_eager=bool(engine_cfg.enforce_eager),
            seed=int(engine_cfg.seed),
            eviction=str(engine_cfg.eviction),
            cache_friendly=tuple(str(w) for w in cache_friendly) if str(engine_cfg.eviction) == "wa_lru" else (),
        )


@dataclass
class KVEventRecorder:
    """In-process stand-in for vLLM's event publisher: keeps every event.

    One row per block hash (stored/removed) or per clear, with a global
    sequence number; `step` and `clock` are set by the driver so each event
    carries the step and simulated time at which it was published. With
    `spill_to(path)` rows are written to Parquet as they happen (every
    `spill_rows`), so a long run keeps little in memory.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    published: int = 0
    recorded: int = 0
    step: int = 0
    clock: float = 0.0
    spill_rows: int = 8192
    _writer: Any = None
    _spill_path: Path | None = None

    def publish(self, batch: Any) -> None:
        from vllm.distributed.kv_events import MEDIUM_GPU, AllBlocksCleared, BlockRemoved, BlockStored

        for event in batch.events:
            if getattr(event, "medium", None) not in (None, MEDIUM_GPU):
                # A tier below GPU memory (OffloadingConnector): not the GPU block pool's.
                continue
            if isinstance(event, BlockStored):
                parent = event.parent_block_hash
                per_block = len(event.token_ids) // max(1, len(event.block_hashes))
                for h in event.block_hashes:
                    self._add("stored", h, parent, per_block)
                    parent = h
            elif isinstance(event, BlockRemoved):
                for h in event.block_hashes:
                    self._add("removed", h, None, 0)
            elif isinstance(event, AllBlocksCleared):
                self._add("cleared", None, None, 0)
            self.published += 1
        if self._spill_path is not None and len(self.rows) >= self.spill_rows:
            self._flush()

    def _add(self, kind: str, block_hash: Any, parent: Any, num_tokens: int) -> None:
        self.rows.append({
            "seq": self.recorded, "event_index": self.published, "step": self.step,
            "time_s": self.clock, "event": kind, "block_hash": as_uint64(block_hash),
            "parent_block_hash": as_uint64(parent), "num_tokens": num_tokens,
        })
        self.recorded += 1

    @staticmethod
    def _arrow_schema() -> Any:
        return pa.schema([(k, pa.type_for_alias(v)) for k, v in KV_EVENT_SCHEMA.items()])

    def _table(self) -> Any:
        return pa.Table.from_pylist(self.rows, schema=self._arrow_schema())

    def spill_to(self, path: Path | str) -> None:
        """Write events to `path` (Parquet) as they happen, from now on."""
        self._spill_path = Path(path)
        self._writer = pq.ParquetWriter(self._spill_path, self._arrow_schema(), compression="zstd")

    def _flush(self) -> None:
        if self.rows:
            self._writer.write_table(self._table())
            self.rows.clear()

    def frame(self) -> Any:
        """All events as a polars frame (closing the spill file, if any)."""
        if self._spill_path is None:
            return pl.from_arrow(self._table())
        self._flush()
        self._writer.close()
        path, self._spill_path, self._writer = self._spill_path, None, None
        return pl.read_parquet(path)

    def clear(self) -> None:
        self.rows.clear()
        self.published = self.recorded = self.step = 0
        self.clock = 0.0

    def shutdown(self) -> None:  # publisher interface
        pass

    def get_publisher_config(self) -> None:  # publisher interface
        return None


@dataclass
class PrefixLookup:
    """One prefix-cache lookup of a request, as vLLM's scheduler made it.

    A waiting request is looked up every step it is tried; a lookup whose
    allocation fails is repeated in a later step, and a preempted request is
    looked up again (over its prompt and the outputs so far) when it resumes.
    """

    event_index: int        # KV events published (or queued) before the lookup
    cached_tokens: int      # tokens the lookup found cached
    num_tokens: int         # request tokens at the lookup (prompt + outputs so far)
    preemptions: int        # times the request had been preempted before the lookup
    step: int               # driver step of the lookup
    admitted: bool | None = None  # allocation succeeded / failed / not attempted


@dataclass
class PrefixLookupRecorder:
    """Wraps the KV cache manager's prefix lookup and the allocation after it.

    Keeps every lookup per request (`PrefixLookup`), so the traces check can
    replay exactly what vLLM did: retried lookups after a failed allocation
    and re-lookups after preemption included.
    """

    events: KVEventRecorder
    block_pool: Any
    lookups: dict[str, list[PrefixLookup]] = field(default_factory=dict)

    def wrap(self, manager: Any) -> None:
        lookup = getattr(manager.get_computed_blocks, "_unwrapped", manager.get_computed_blocks)
        allocate = getattr(manager.allocate_slots, "_unwrapped", manager.allocate_slots)

        def get_computed_blocks(request: Any):
            result = lookup(request)
            pending = len(self.block_pool.kv_event_queue)
            self.lookups.setdefault(request.request_id, []).append(PrefixLookup(
                event_index=self.events.published + pending, cached_tokens=int(result[1]),
                num_tokens=int(request.num_tokens), preemptions=int(request.num_preemptions),
                step=self.events.step))
            return result

        def allocate_slots(request: Any, *args: Any, **kwargs: Any):
            result = allocate(request, *args, **kwargs)
            # The waiting-queue admission passes the lookup's blocks; running
            # requests' allocations do not.
            if "new_computed_blocks" in kwargs:
                tried = self.lookups.get(request.request_id)
                if tried and tried[-1].admitted is None:
                    tried[-1].admitted = result is not None
            return result

        get_computed_blocks._unwrapped = lookup  # type: ignore[attr-defined]
        allocate_slots._unwrapped = allocate  # type: ignore[attr-defined]
        manager.get_computed_blocks = get_computed_blocks
        manager.allocate_slots = allocate_slots

    def take(self, request_id: str) -> list[PrefixLookup]:
        """Forget and return a finished request's lookups."""
        return self.lookups.pop(request_id, [])


@dataclass
class Engine:
    """A built engine with its observers."""

    llm: Any
    spec: EngineSpec
    events: KVEventRecorder
    lookups: PrefixLookupRecorder
    # Engine-internal request id -> workload, filled by the driver (wa_lru reads it).
    request_workloads: dict[str, str] = field(default_factory=dict)
    eviction: Any = None
    schedule: Any = None  # engine.schedule.ScheduleRecorder when instrumented
    # The worker side of vLLM's KV connector (EngineSpec.cpu_offload): vLLM
    # keeps it in a process-wide global, which build_engine clears so other
    # engines run without it; engine/offload_run.py installs it while stepping.
    kv_worker_connector: Any = None

    @property
    def scheduler(self) -> Any:
        return self.llm.llm_engine.engine_core.engine_core.scheduler

    def reset(self) -> None:
        """Empty the prefix cache and forget recorded events and lookups."""
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM refused to reset the prefix cache (requests running?)")
        # The reset queues an AllBlocksCleared event; it belongs to no run, so
        # a reused engine records exactly what a fresh one would.
        self.scheduler.kv_cache_manager.block_pool.take_events()
        self.events.clear()
        self.lookups.lookups.clear()
        self.request_workloads.clear()
        if self.schedule is not None:
            self.schedule.clear()

    def none_hash_seed(self) -> str:
        from vllm.v1.core.kv_cache_utils import get_none_hash_seed

        return get_none_hash_seed()


@contextmanager
def _hidden_modules(prefixes: tuple[str, ...] = ("llvmlite", "numba")) -> Iterator[None]:
    """Hide modules from vLLM's start-up scan of `sys.modules` while it runs.

    vLLM 0.32's Triton kernel-override pass calls `vars(x).get(...)` on every
    module attribute; llvmlite's FFI wrapper (loaded with numba, which the
    replay kernels use) answers `vars()` with a non-dict and the engine fails
    to start. Those modules hold no vLLM kernels, so skipping them is safe.
    """
    hidden = {name: mod for name, mod in sys.modules.items()
              if name.split(".")[0] in prefixes}
    for name in hidden:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.update(hidden)


def build_engine(spec: EngineSpec, instrument: bool = True) -> Engine:
    """Start vLLM on the CPU with the token simulator and (optionally) observers."""
    from vllm import LLM
    from vllm.config import KVEventsConfig

    from prefix_study.engine.simulator import TokenSimulator

    if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") != "0":
        raise RuntimeError("set VLLM_ENABLE_V1_MULTIPROCESSING=0: the engine must run in process")
    model_dir = Path(spec.model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"model directory {model_dir} has no config.json; build the model assets first")
    kwargs: dict[str, Any] = dict(
        model=str(model_dir),
        tokenizer=str(model_dir),
        block_size=spec.block_size,
        enable_prefix_caching=spec.prefix_caching,
        num_gpu_blocks_override=spec.capacity_blocks,
        max_model_len=spec.max_model_len,
        max_num_seqs=spec.max_num_seqs,
        max_num_batched_tokens=max(spec.max_num_batched_tokens, spec.max_model_len),
        enforce_eager=spec.enforce_eager,
        logits_processors=[TokenSimulator],
        seed=spec.seed,
        dtype="float32",
        prefix_caching_hash_algo=PREFIX_HASH_ALGO,
        disable_log_stats=True,
    )
    if instrument:
        kwargs["kv_events_config"] = KVEventsConfig(enable_kv_cache_events=True, publisher="null")
    if spec.cpu_offload is not None:
        from vllm.distributed.kv_transfer import kv_transfer_state

        from prefix_study.engine.offload_spec import kv_transfer_config

        tier = spec.cpu_offload
        kwargs["kv_transfer_config"] = kv_transfer_config(tier.chunks, tier.policy, tier.blocks_per_chunk)
        kv_transfer_state._KV_CONNECTOR_AGENT = None  # this engine's worker builds its own
    worker_connector = None
    try:
        with _hidden_modules():
            llm = LLM(**kwargs)
    finally:
        if spec.cpu_offload is not None:
            worker_connector, kv_transfer_state._KV_CONNECTOR_AGENT = kv_transfer_state._KV_CONNECTOR_AGENT, None
    scheduler = llm.llm_engine.engine_core.engine_core.scheduler
    events = KVEventRecorder()
    lookups = PrefixLookupRecorder(events=events, block_pool=scheduler.kv_cache_manager.block_pool)
    if instrument:
        scheduler.kv_event_publisher = events
        lookups.wrap(scheduler.kv_cache_manager)
    engine = Engine(llm=llm, spec=spec, events=events, lookups=lookups, kv_worker_connector=worker_connector)
    from prefix_study.engine.eviction import install_eviction_policy

    engine.eviction = install_eviction_policy(scheduler, spec.eviction, spec.cache_friendly,
                                              engine.request_workloads.get)
    if instrument:
        from prefix_study.engine.schedule import ScheduleRecorder

        engine.schedule = ScheduleRecorder()
        engine.schedule.wrap(scheduler.kv_cache_manager)
    return engine
