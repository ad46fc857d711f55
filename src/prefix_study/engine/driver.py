"""Drive a request stream through the engine on a clock, recording reuse.

Requests enter in arrival order: a conversation's first turn at its Poisson
arrival time, each later turn only once its previous turn has finished and
its think time has passed (closed loop). The clock skips idle gaps, so the
run honours arrival times without sleeping; with the `simulated` clock each
step costs `step_overhead_s + tokens * token_time_s`, which makes the whole
run (scheduling, cache events, outputs) deterministic.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from tqdm import tqdm

from prefix_study.config.schema import EngineConfig
from prefix_study.engine.cost_clock import StepWork, scheduled_work
from prefix_study.engine.runtime import Engine, PrefixLookup
from prefix_study.traces.schema import reported_lookup_index


@dataclass
class ClockModel:
    # Defaults are the schema's (config.schema.EngineConfig), not repeated here.
    kind: str = str(EngineConfig.clock)
    step_overhead_s: float = EngineConfig.step_overhead_s
    token_time_s: float = EngineConfig.token_time_s
    #: prefix_study.cost.CostModel, for kind "cost_model".
    cost: Any = None

    def step_cost(self, wall_s: float, tokens: int, work: StepWork | None = None) -> float:
        if self.kind == "wall":
            return wall_s
        if self.kind == "cost_model":
            work = work or StepWork()
            return float(self.cost.step_time_s(work.prefill, work.decode))
        return self.step_overhead_s + tokens * self.token_time_s


@dataclass
class StepObserver:
    """Wraps `Scheduler.schedule` to note each step's new requests and tokens."""

    new_request_ids: list[str] = field(default_factory=list)
    tokens: int = 0
    work: StepWork = field(default_factory=StepWork)

    def wrap(self, scheduler: Any) -> None:
        # Replace an earlier drive's wrapper instead of stacking on it: otherwise
        # every drive() on the same engine adds a layer whose observer keeps
        # collecting ids forever.
        original = getattr(scheduler.schedule, "_unwrapped", scheduler.schedule)

        def schedule(*args: Any, **kwargs: Any):
            out = original(*args, **kwargs)
            self.tokens += int(out.total_num_scheduled_tokens)
            self.new_request_ids.extend(r.req_id for r in out.scheduled_new_reqs)
            self.work.extend(scheduled_work(out, scheduler))
            return out

        schedule._unwrapped = original  # type: ignore[attr-defined]
        scheduler.schedule = schedule

    def take_work(self) -> StepWork:
        work, self.work = self.work, StepWork()
        return work

    def take(self) -> tuple[list[str], int]:
        ids, tokens = self.new_request_ids, self.tokens
        self.new_request_ids, self.tokens = [], 0
        return ids, tokens


@dataclass
class DriveResult:
    requests: pl.DataFrame
    kv_events: pl.DataFrame
    stats: dict[str, Any]
    # What vLLM's KV cache manager did, in order (engine/schedule.py); None
    # for an uninstrumented engine.
    schedule: pl.DataFrame | None = None


REQUEST_SCHEMA = {
    "request_id": pl.String, "workload": pl.String, "conversation_id": pl.String,
    "turn_index": pl.Int32, "arrival_s": pl.Float64, "scheduled_s": pl.Float64,
    "first_token_s": pl.Float64, "finished_s": pl.Float64,
    "num_prompt_tokens": pl.Int32, "num_cached_tokens": pl.Int32,
    "reuse_fraction": pl.Float64, "prompt_token_ids": pl.List(pl.Int32),
    "output_token_ids": pl.List(pl.Int32), "scheduled_step": pl.Int64,
    "lookup_event_index": pl.Int64, "num_preemptions": pl.Int32, "num_lookups": pl.Int32,
    "lookups": pl.List(pl.Struct({
        "event_index": pl.Int64, "cached_tokens": pl.Int32, "num_tokens": pl.Int32,
        "preemptions": pl.Int32, "step": pl.Int64, "admitted": pl.Boolean})),
}

#: Steps in a row that schedule nothing before the head of the waiting queue
#: is declared unschedulable (it cannot fit in the KV cache even alone). A
#: safety net: vLLM 0.32 refuses to start unless capacity - 1 blocks hold one
#: max_model_len request, so no run so far has needed it.
STUCK_STEPS = 3


def lookup_columns(lookups: list[PrefixLookup]) -> dict[str, Any]:
    """Per-request columns from every prefix lookup vLLM made for it."""
    reported = reported_lookup_index([lk.preemptions for lk in lookups])
    return {
        "lookup_event_index": None if reported is None else lookups[reported].event_index,
        "num_preemptions": max((lk.preemptions for lk in lookups), default=0),
        "num_lookups": len(lookups),
        "lookups": [vars(lk).copy() for lk in lookups],
    }


def drive(engine: Engine, stream: pl.DataFrame, mode: str = "script",
          clock: ClockModel | None = None, progress: bool = True,
          desc: str = "engine") -> DriveResult:
    """Run `stream` (a checked request stream) through `engine`."""
    if engine.kv_worker_connector is not None:
        raise ValueError("an engine with vLLM's CPU tier (EngineSpec.cpu_offload) runs through "
                         "engine/offload_run.py:run_offloaded, which installs its KV connector")
    clock = clock or ClockModel()
    llm_engine = engine.llm.llm_engine
    observer = StepObserver()
    observer.wrap(engine.scheduler)
    rows = stream.sort(["conversation_id", "turn_index"]).to_dicts()
    next_turn: dict[int, int] = {}
    for i, row in enumerate(rows):
        if i + 1 < len(rows) and rows[i + 1]["conversation_id"] == row["conversation_id"]:
            next_turn[i] = i + 1
    first_turns = {i + 1 for i in next_turn.keys()}
    ready: list[tuple[float, str, int]] = [
        (float(r["arrival_s"]), r["request_id"], i) for i, r in enumerate(rows) if i not in first_turns
    ]
    heapq.heapify(ready)

    now, step = 0.0, 0
    in_flight: dict[str, int] = {}          # request id -> row index
    internal_ids: dict[str, str] = {}       # engine-internal id -> request id
    engine_ids: dict[str, str] = {}         # request id -> engine-internal id
    records: dict[int, dict[str, Any]] = {}
    done_prompt = done_cached = done_tokens = 0
    unschedulable: list[dict[str, Any]] = []
    idle_steps = 0
    wall_start = time.perf_counter()
    from prefix_study.engine.simulator import simulator_params  # vLLM: loaded on first drive, not on import

    bar = tqdm(total=len(rows), desc=desc, unit="req", disable=not progress, mininterval=0.5)
    while ready or in_flight:
        while ready and ready[0][0] <= now:
            arrival, _, idx = heapq.heappop(ready)
            row = rows[idx]
            prompt = list(row["prompt_token_ids"])
            params = simulator_params(mode, len(prompt), row["scripted_output_token_ids"])
            internal = llm_engine.add_request(row["request_id"], {"prompt_token_ids": prompt}, params)
            internal_ids[internal] = row["request_id"]
            engine.request_workloads[internal] = row["workload"]
            if engine.schedule is not None:
                engine.schedule.names[internal] = row["request_id"]
            engine_ids[row["request_id"]] = internal
            in_flight[row["request_id"]] = idx
            records[idx] = {"arrival_s": arrival, "scheduled_s": None, "scheduled_step": None,
                            "first_token_s": None}
        if not in_flight:
            now = max(now, ready[0][0])
            continue
        if not llm_engine.has_unfinished_requests():
            raise RuntimeError(f"engine idle with {len(in_flight)} requests unaccounted for: "
                               f"{list(in_flight)[:5]}")
        engine.events.step, engine.events.clock = step, now
        if engine.schedule is not None:
            engine.schedule.step = step
        t0 = time.perf_counter()
        outputs = llm_engine.step()
        wall = time.perf_counter() - t0
        new_ids, tokens = observer.take()
        for internal in new_ids:
            rid = internal_ids.get(internal, internal)
            if rid in in_flight and records[in_flight[rid]]["scheduled_s"] is None:
                rec = records[in_flight[rid]]
                rec["scheduled_s"], rec["scheduled_step"] = now, step
        idle_steps = idle_steps + 1 if tokens == 0 and not outputs else 0
        if idle_steps >= STUCK_STEPS:
            # Nothing runs and the head of vLLM's waiting queue cannot be
            # allocated (it does not fit even alone): drop it, don't spin.
            head = engine.scheduler.waiting.peek_request().request_id
            rid = internal_ids.get(head, head)
            llm_engine.abort_request([head], internal=True)
            idx = in_flight.pop(rid)
            engine.lookups.take(head)
            del records[idx]
            reason = "kv_cache_too_small"
            while True:  # later turns of the conversation never arrive
                unschedulable.append({"request_id": rows[idx]["request_id"], "reason": reason,
                                      "workload": rows[idx]["workload"], "step": step})
                if idx not in next_turn:
                    break
                idx, reason = next_turn[idx], "earlier_turn_unschedulable"
            bar.update(1)
            idle_steps = 0
        now += clock.step_cost(wall, tokens, observer.take_work())
        done_tokens += tokens
        step += 1
        for out in outputs:
            rid = internal_ids.get(out.request_id, out.request_id)
            idx = in_flight.get(rid)
            if idx is None:
                continue
            rec = records[idx]
            if rec["first_token_s"] is None and out.outputs and out.outputs[0].token_ids:
                rec["first_token_s"] = now
            if not out.finished:
                continue
            del in_flight[rid]
            row = rows[idx]
            n_prompt = len(row["prompt_token_ids"])
            cached = int(out.num_cached_tokens or 0)
            lookups = engine.lookups.take(engine_ids[rid])
            rec.update(
                request_id=row["request_id"], workload=row["workload"],
                conversation_id=row["conversation_id"], turn_index=row["turn_index"],
                finished_s=now, num_prompt_tokens=n_prompt, num_cached_tokens=cached,
                reuse_fraction=cached / n_prompt, prompt_token_ids=list(row["prompt_token_ids"]),
                output_token_ids=list(out.outputs[0].token_ids),
                **lookup_columns(lookups),
            )
            done_prompt += n_prompt
            done_cached += cached
            if idx in next_turn:
                nxt = next_turn[idx]
                think = float(rows[nxt].get("think_time_s") or 0.0)
                heapq.heappush(ready, (now + think, rows[nxt]["request_id"], nxt))
            bar.update(1)
            elapsed = time.perf_counter() - wall_start
            bar.set_postfix(tok_s=f"{done_tokens / max(elapsed, 1e-9):.0f}",
                            hit=f"{done_cached / max(done_prompt, 1):.3f}", refresh=False)
    bar.close()
    wall_total = time.perf_counter() - wall_start
    requests = pl.DataFrame([records[i] for i in sorted(records)], schema=REQUEST_SCHEMA) \
        if records else pl.DataFrame(schema=REQUEST_SCHEMA)
    requests = requests.sort(["scheduled_step", "request_id"], nulls_last=True)
    kv_events = engine.events.frame()
    stats = {
        "requests": len(records), "steps": step, "wall_s": wall_total,
        "tokens_scheduled": done_tokens, "tokens_per_s": done_tokens / max(wall_total, 1e-9),
        "prompt_tokens": done_prompt, "cached_tokens": done_cached,
        "hit_rate": done_cached / max(done_prompt, 1), "simulated_end_s": now,
        "preempted_requests": sum(1 for r in records.values() if r.get("num_preemptions")),
        "preemptions": sum(r.get("num_preemptions") or 0 for r in records.values()),
        "unschedulable": unschedulable,
    }
    schedule = engine.schedule.frame() if engine.schedule is not None else None
    if schedule is not None:
        stats["freed_by_preemption"] = int(((schedule["op"] == "free") & (schedule["reason"] == "preempted")).sum())
        stats["failed_allocations"] = int(((schedule["op"] == "allocate") & ~schedule["ok"]).sum())
    return DriveResult(requests=requests, kv_events=kv_events, stats=stats, schedule=schedule)
