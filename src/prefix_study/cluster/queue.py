"""One replica's request queue: continuous batching timed by a cost model.

Each engine step admits waiting requests in arrival order while fewer than
`max_batch` run, prefills them (their uncached prompt tokens, in one step:
no chunked prefill) and decodes one token of every other running request.
The step lasts `cost.step_time_s(prefill, decode_contexts)`
(prefill: (new tokens, cached context) per admitted request); admitted
requests get their first token when it ends, and a request finishes after
its last output token. Between events nothing changes but the decode
contexts, so runs of decode-only steps are advanced in bulk: the step time is
taken as affine in the context (exact for a cost model that is; two calls per
run instead of one per token).

`advance_to(t)` executes every step that starts before t, so a router
looking at the replica at time t sees the step in flight as done; a request
arriving at t is admitted at the next step boundary.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Protocol


class CostModelLike(Protocol):
    def step_time_s(self, prefill: list[tuple[int, int]], decode_context_tokens: list[int]) -> float:
        """One step (overhead included): prefill = (new tokens, cached context)
        per admitted request; decode = context length per decoding request."""


class ReplicaQueue:
    """Waiting queue and running batch of one replica, with its clock.

    first_token_s and finish_s are shared result lists indexed by request.
    """

    __slots__ = ("cost", "max_batch", "block_size", "now", "step", "waiting", "waiting_prefill",
                 "running", "num_running", "ctx_base", "prompt", "admitted_step", "first_token_s",
                 "finish_s", "last_end", "last_prefill", "prefill_total", "busy_s", "waiting_prompt")

    def __init__(self, cost: CostModelLike, max_batch: int, block_size: int,
                 first_token_s: list[float], finish_s: list[float]):
        self.cost = cost
        self.max_batch = int(max_batch)
        self.block_size = int(block_size)
        self.now = 0.0          # start of the next step
        self.step = 0           # index of the next step
        self.waiting: deque[tuple[int, int, int, int]] = deque()  # (req, prompt, cached, output)
        self.waiting_prefill = 0  # uncached prompt tokens waiting
        self.waiting_prompt = 0   # prompt tokens waiting
        self.running: list[tuple[int, int]] = []  # heap of (finish step, req) of decoding requests
        self.num_running = 0
        # Decode context of the running requests at step g: ctx_base + num_running * g.
        self.ctx_base = 0
        self.prompt: dict[int, int] = {}
        self.admitted_step: dict[int, int] = {}
        self.first_token_s = first_token_s
        self.finish_s = finish_s
        self.last_end = 0.0
        self.last_prefill = 0
        self.prefill_total = 0  # prompt tokens this replica computed
        self.busy_s = 0.0

    # --- what routers see -------------------------------------------------
    def outstanding_prefill_tokens(self, t: float) -> int:
        """Uncached prompt tokens not yet prefilled by time t."""
        return self.waiting_prefill + (self.last_prefill if self.last_end > t else 0)

    def in_flight(self) -> int:
        """Requests routed here and not finished (SGLang's worker load)."""
        return len(self.waiting) + self.num_running

    def waiting_requests(self) -> int:
        return len(self.waiting)

    def active_tokens(self) -> int:
        """KV tokens of running requests plus prompts of waiting ones."""
        return self.ctx_base + self.num_running * self.step + self.waiting_prompt

    def running_tokens(self) -> int:
        return self.ctx_base + self.num_running * self.step

    # --- simulation -------------------------------------------------------
    def enqueue(self, req: int, arrival_s: float, prompt: int, cached: int, output: int) -> None:
        if not self.waiting and self.num_running == 0 and self.now < arrival_s:
            self.now = arrival_s  # idle until this arrival
        self.waiting.append((req, prompt, cached, output))
        self.waiting_prefill += prompt - cached
        self.waiting_prompt += prompt

    def advance_to(self, t: float) -> None:
        """Execute every step that starts before t."""
        while self.now < t and (self.waiting or self.num_running):
            if self.waiting and self.num_running < self.max_batch:
                self._mixed_step()
            else:
                self._decode_run(t)

    def drain(self) -> None:
        self.advance_to(math.inf)

    def _mixed_step(self) -> None:
        g = self.step
        decode = [self.prompt[r] + g - self.admitted_step[r] for _, r in self.running]
        admitted = []
        prefill = []
        while self.waiting and self.num_running + len(admitted) < self.max_batch:
            w = self.waiting.popleft()
            admitted.append(w)
            prefill.append((w[1] - w[2], w[2]))  # (new tokens, cached context)
            self.waiting_prefill -= w[1] - w[2]
            self.waiting_prompt -= w[1]
        dt = self.cost.step_time_s(prefill, decode)
        end = self.now + dt
        computed = sum(new for new, _ in prefill)
        self.prefill_total += computed
        self.last_end, self.last_prefill = end, computed
        self._finish_decoders(g, end)
        for req, prompt, cached, output in admitted:
            self.first_token_s[req] = end
            if output <= 1:
                self.finish_s[req] = end
                continue
            self.prompt[req] = prompt
            self.admitted_step[req] = g
            self.ctx_base += prompt - g
            self.num_running += 1
            heapq.heappush(self.running, (g + output - 1, req))
        self.busy_s += dt
        self.now = end
        self.step = g + 1

    def _finish_decoders(self, g: int, end: float) -> None:
        running = self.running
        while running and running[0][0] <= g:
            _, req = heapq.heappop(running)
            self.finish_s[req] = end
            self.ctx_base -= self.prompt.pop(req) - self.admitted_step.pop(req)
            self.num_running -= 1

    def _decode_run(self, t: float) -> None:
        """Decode-only steps up to the next completion or the first step
        starting at or after t."""
        g = self.step
        b = self.num_running
        k_max = self.running[0][0] - g + 1
        ctxs = [self.prompt[r] + g - self.admitted_step[r] for _, r in self.running]
        d0 = self.cost.step_time_s([], ctxs)
        delta = (self.cost.step_time_s([], [c + 1 for c in ctxs]) - d0) if k_max > 1 else 0.0
        k = k_max
        if t != math.inf:
            # Steps j = 0..k-1 start at now + j*d0 + delta*j*(j-1)/2; run those before t.
            k = min(k_max, _steps_starting_before(t - self.now, d0, delta))
        dt = k * d0 + delta * k * (k - 1) / 2.0
        end = self.now + dt
        self.busy_s += dt
        self.now = end
        self.step = g + k
        self.last_prefill = 0
        self._finish_decoders(g + k - 1, end)


def _steps_starting_before(span: float, d0: float, delta: float) -> int:
    """Number of j >= 0 with j*d0 + delta*j*(j-1)/2 < span (at least 1)."""
    if span <= 0:
        return 1
    a, b = delta / 2.0, d0 - delta / 2.0
    if a > 1e-18:
        j = (-b + math.sqrt(b * b + 4 * a * span)) / (2 * a)
    elif b > 0:
        j = span / b
    else:
        return 1 << 62
    k = max(1, int(math.ceil(j)))
    # Fix rounding at the boundary: k = number of starts strictly before span.
    while k > 1 and (k - 1) * d0 + delta * (k - 1) * (k - 2) / 2.0 >= span:
        k -= 1
    while k * d0 + delta * k * (k - 1) / 2.0 < span:
        k += 1
    return k
