"""Record the schedule vLLM actually ran, as seen by its KV cache manager.

Batched vLLM interleaves requests: a lookup may fail to allocate and be
retried a step later, requests are preempted (their blocks freed, later
recomputed), prompts may be chunked, and several requests free blocks in one
step. Which blocks are cached when a request is looked up depends on all of
it. The recorder wraps three public methods of the scheduler's
`KVCacheManager` (as `PrefixLookupRecorder` does) and logs, in call order:

- `lookup`: `get_computed_blocks(request)`; `num_tokens` the request's tokens
  at lookup, `hit_tokens` what the cache returned;
- `allocate`: `allocate_slots(request, num_new_tokens, ...)`; `ok` whether it
  succeeded, `hit_tokens` the prefix hit it adopted, `blocks_after` and
  `cached_after` the request's blocks and cached blocks afterwards;
- `free`: `free(request)`, `reason` finished or preempted.

`replay/batched.py` replays vLLM's free queue driven by this log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

SCHEDULE_SCHEMA = {
    "seq": pl.Int64, "step": pl.Int64, "op": pl.String, "request_id": pl.String,
    "num_tokens": pl.Int32, "num_computed_tokens": pl.Int32, "num_new_tokens": pl.Int32,
    "hit_tokens": pl.Int32, "ok": pl.Boolean, "blocks_after": pl.Int32,
    "cached_after": pl.Int32, "reason": pl.String,
}


@dataclass
class ScheduleRecorder:
    """Logs lookups, allocations and frees of the KV cache manager."""

    names: dict[str, str] = field(default_factory=dict)  # internal id -> request id
    rows: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0

    def _add(self, op: str, request: Any, **values: Any) -> None:
        row = {k: None for k in SCHEDULE_SCHEMA}
        row.update(seq=len(self.rows), step=self.step, op=op,
                   request_id=self.names.get(request.request_id, request.request_id),
                   num_tokens=int(request.num_tokens),
                   num_computed_tokens=int(request.num_computed_tokens))
        row.update(values)
        self.rows.append(row)

    def wrap(self, manager: Any) -> None:
        single = manager.coordinator.single_type_managers
        if len(single) != 1:
            raise RuntimeError("the schedule recorder supports one KV cache group only")
        group = single[0]
        lookup, allocate, free = manager.get_computed_blocks, manager.allocate_slots, manager.free

        def get_computed_blocks(request: Any):
            result = lookup(request)
            self._add("lookup", request, hit_tokens=int(result[1]))
            return result

        def allocate_slots(request: Any, num_new_tokens: int, *args: Any, **kwargs: Any):
            computed = int(request.num_computed_tokens)
            result = allocate(request, num_new_tokens, *args, **kwargs)
            hit = kwargs.get("num_new_computed_tokens", args[0] if args else 0)
            rid = request.request_id
            self._add("allocate", request, num_computed_tokens=computed,
                      num_new_tokens=int(num_new_tokens), hit_tokens=int(hit),
                      ok=result is not None, blocks_after=len(group.req_to_blocks.get(rid, ())),
                      cached_after=int(group.num_cached_block.get(rid, 0)))
            return result

        def free_request(request: Any) -> None:
            self._add("free", request, reason="finished" if request.is_finished() else "preempted")
            free(request)

        manager.get_computed_blocks = get_computed_blocks
        manager.allocate_slots = allocate_slots
        manager.free = free_request

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=SCHEDULE_SCHEMA)

    def clear(self) -> None:
        self.rows.clear()
        self.names.clear()
        self.step = 0
