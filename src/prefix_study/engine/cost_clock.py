"""What vLLM scheduled in one step, in the cost model's terms.

`engine.clock=cost_model` makes each step last `CostModel.step_time_s` of the
step's work: every request the scheduler gave tokens is either a prefill
chunk (it has not yet computed its whole prompt: `num_scheduled_tokens` new
tokens after `num_computed_tokens` of context, prefix-cache hits included)
or a decode (context = computed + scheduled tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepWork:
    prefill: list[tuple[int, int]] = field(default_factory=list)  # (new tokens, cached/computed context)
    decode: list[int] = field(default_factory=list)               # context tokens per decoding request

    def extend(self, other: "StepWork") -> None:
        self.prefill += other.prefill
        self.decode += other.decode


def scheduled_work(scheduler_output: Any, scheduler: Any) -> StepWork:
    """Prefill chunks and decodes of one `SchedulerOutput` (vLLM V1)."""
    computed: dict[str, int] = {r.req_id: int(r.num_computed_tokens) for r in scheduler_output.scheduled_new_reqs}
    cached = scheduler_output.scheduled_cached_reqs
    computed.update(zip(cached.req_ids, (int(n) for n in cached.num_computed_tokens)))
    work = StepWork()
    for req_id in sorted(scheduler_output.num_scheduled_tokens):
        n = int(scheduler_output.num_scheduled_tokens[req_id])
        done = computed.get(req_id, 0)
        request = scheduler.requests.get(req_id)
        prompt = int(request.num_prompt_tokens) if request is not None else 0
        if done < prompt:
            work.prefill.append((n, done))
        else:
            work.decode.append(done + n)
    return work
