"""The replicas' request queues: continuous batching timed by a cost model.

Each engine step admits waiting requests in arrival order while fewer than
`max_batch` run, prefills them (their uncached prompt tokens, in one step:
no chunked prefill) and decodes one token of every other running request.
The step lasts the cost model's `step_time_s(prefill, decode_contexts)`
(prefill: (new tokens, cached context) per admitted request); admitted
requests get their first token when it ends, and a request finishes after
its last output token. Between events nothing changes but the decode
contexts, so runs of decode-only steps are advanced in bulk: the step time is
taken as affine in the context (exact for a cost model that is; two step
times per run instead of one per token).

`advance(queues, t)` executes every step that starts before t on every
replica, so a router looking at a replica at time t sees the step in flight
as done; a request arriving at t is admitted at the next step boundary.

All replicas' queues are one tuple of arrays (`ReplicaQueues.state`), so
the simulation's per-request work is a few numba calls; the functions here
are numba, the class only allocates and reads results.
"""

from __future__ import annotations

import math

import numpy as np

from prefix_study.cluster.costs import add_prefill, step_constants, step_time_s
from prefix_study.replay.kernels._common import inline, jit

# Columns of the per-replica clock array (float64).
NOW, LAST_END, BUSY_S = 0, 1, 2
# Columns of the per-replica count array (int64). STEP: index of the next
# step; CTX_BASE: the running requests' decode context at step g is
# CTX_BASE + NUM_RUNNING * g; LAST_PREFILL: prompt tokens the last step
# computed (in flight until LAST_END); HEAD/TAIL: the waiting list
# (linked through next_waiting, -1: empty).
(STEP, WAITING_PREFILL, WAITING_PROMPT, NUM_WAITING, NUM_RUNNING, CTX_BASE, LAST_PREFILL, PREFILL_TOTAL,
 HEAD, TAIL) = range(10)


class ReplicaQueues:
    """Waiting queues, running batches and clocks of `num_replicas` replicas
    serving requests 0..num_requests-1 (prompt and output tokens per
    request; `state[7]`, the cached tokens, is set before each enqueue)."""

    def __init__(self, cost, max_batch: int, num_replicas: int, prompt_tokens, output_tokens):
        n = len(prompt_tokens)
        counts = np.zeros((num_replicas, 10), dtype=np.int64)
        counts[:, HEAD] = counts[:, TAIL] = -1
        self.state = (
            step_constants(cost), np.zeros((num_replicas, 3)), counts,
            np.zeros((num_replicas, max(1, int(max_batch))), dtype=np.int64),  # running heap: finish step
            np.zeros((num_replicas, max(1, int(max_batch))), dtype=np.int64),  # ... and request
            np.full(n, -1, dtype=np.int64),  # next waiting request of the same replica
            np.asarray(prompt_tokens, dtype=np.int64), np.zeros(n, dtype=np.int64),  # prompt, cached
            np.asarray(output_tokens, dtype=np.int64), np.zeros(n, dtype=np.int64),  # output, admitted step
            np.zeros(n), np.zeros(n),  # first token, finish (seconds)
        )
        if int(max_batch) < 1:
            raise ValueError(f"max_batch={max_batch}: a replica runs at least one request")

    @property
    def first_token_s(self) -> np.ndarray:
        return self.state[10]

    @property
    def finish_s(self) -> np.ndarray:
        return self.state[11]

    @property
    def prefill_tokens(self) -> np.ndarray:
        """Prompt tokens each replica computed."""
        return self.state[2][:, PREFILL_TOTAL].copy()

    @property
    def busy_s(self) -> np.ndarray:
        return self.state[1][:, BUSY_S].copy()

    def enqueue(self, replica: int, req: int, arrival_s: float, cached_tokens: int) -> None:
        self.state[7][req] = cached_tokens
        enqueue(self.state, replica, req, arrival_s)

    def advance_to(self, t: float) -> None:
        advance(self.state, t)

    def drain(self) -> None:
        advance(self.state, math.inf)


# --- what routers see (numba) -----------------------------------------------
@inline
def outstanding_prefill_tokens(q, r, t):
    """Uncached prompt tokens not yet prefilled by time t."""
    counts = q[2]
    return counts[r, WAITING_PREFILL] + (counts[r, LAST_PREFILL] if q[1][r, LAST_END] > t else 0)


@inline
def in_flight(q, r):
    """Requests routed here and not finished (SGLang's worker load)."""
    return q[2][r, NUM_WAITING] + q[2][r, NUM_RUNNING]


@inline
def waiting_requests(q, r):
    return q[2][r, NUM_WAITING]


@inline
def running_tokens(q, r):
    counts = q[2]
    return counts[r, CTX_BASE] + counts[r, NUM_RUNNING] * counts[r, STEP]


@inline
def active_tokens(q, r):
    """KV tokens of running requests plus prompts of waiting ones."""
    return running_tokens(q, r) + q[2][r, WAITING_PROMPT]


# --- simulation (numba) -----------------------------------------------------
@jit
def enqueue(q, r, req, arrival_s):
    """Request `req` (its cached tokens in q[7]) joins replica r's queue."""
    clock, counts, nxt, prompt, cached = q[1], q[2], q[5], q[6], q[7]
    if counts[r, NUM_WAITING] == 0 and counts[r, NUM_RUNNING] == 0 and clock[r, NOW] < arrival_s:
        clock[r, NOW] = arrival_s  # idle until this arrival
    nxt[req] = -1
    if counts[r, TAIL] >= 0:
        nxt[counts[r, TAIL]] = req
    else:
        counts[r, HEAD] = req
    counts[r, TAIL] = req
    counts[r, NUM_WAITING] += 1
    counts[r, WAITING_PREFILL] += prompt[req] - cached[req]
    counts[r, WAITING_PROMPT] += prompt[req]


@jit
def place(q, out, exact, i, r, overrode, hits, block_size, arrival_s, next_arrival_s):
    """Request i, routed to replica r where its prompt hit `hits` blocks,
    joins r's queue, and every replica advances to the next arrival
    (next_arrival_s; inf: the last request, so every queue drains). Records
    the request's replica, hits, cached tokens, overrode and whether a
    replica with a longer exact prefix match (exact) existed in out[0..4]."""
    cached = min(hits * block_size, q[6][i] - 1)  # the last prompt token is always computed
    out[0, i] = r
    out[1, i] = hits
    out[2, i] = cached
    out[3, i] = overrode
    out[4, i] = 1 if exact[r] < exact.max() else 0
    q[7][i] = cached
    enqueue(q, r, i, arrival_s)
    advance(q, next_arrival_s)


@jit
def advance(q, t):
    """Every replica executes every step that starts before t."""
    for r in range(q[2].shape[0]):
        advance_replica(q, r, t)


@jit
def advance_replica(q, r, t):
    clock, counts = q[1], q[2]
    max_batch = q[3].shape[1]
    while clock[r, NOW] < t and (counts[r, NUM_WAITING] > 0 or counts[r, NUM_RUNNING] > 0):
        if counts[r, NUM_WAITING] > 0 and counts[r, NUM_RUNNING] < max_batch:
            _mixed_step(q, r)
        else:
            _decode_run(q, r, t)


@inline
def _heap_push(keys, vals, r, size, key, val):
    j = size
    while j > 0:
        parent = (j - 1) >> 1
        if keys[r, parent] <= key:
            break
        keys[r, j] = keys[r, parent]
        vals[r, j] = vals[r, parent]
        j = parent
    keys[r, j] = key
    vals[r, j] = val


@inline
def _heap_pop(keys, vals, r, size):
    """Removes the root of a heap of `size` entries (size - 1 remain)."""
    size -= 1
    key = keys[r, size]
    val = vals[r, size]
    j = 0
    while True:
        child = 2 * j + 1
        if child >= size:
            break
        if child + 1 < size and keys[r, child + 1] < keys[r, child]:
            child += 1
        if keys[r, child] >= key:
            break
        keys[r, j] = keys[r, child]
        vals[r, j] = vals[r, child]
        j = child
    if size > 0:
        keys[r, j] = key
        vals[r, j] = val


@jit
def _finish_decoders(q, r, g, end):
    """Requests whose last token is step g's finish when it ends."""
    counts, keys, vals, prompt, admitted, finish = q[2], q[3], q[4], q[6], q[9], q[11]
    while counts[r, NUM_RUNNING] > 0 and keys[r, 0] <= g:
        req = vals[r, 0]
        _heap_pop(keys, vals, r, counts[r, NUM_RUNNING])
        finish[req] = end
        counts[r, CTX_BASE] -= prompt[req] - admitted[req]
        counts[r, NUM_RUNNING] -= 1


@jit
def _mixed_step(q, r):
    c, clock, counts, keys, vals, nxt = q[0], q[1], q[2], q[3], q[4], q[5]
    prompt, cached, output, admitted, first, finish = q[6], q[7], q[8], q[9], q[10], q[11]
    max_batch = keys.shape[1]
    g = counts[r, STEP]
    b = counts[r, NUM_RUNNING]
    decode_context = counts[r, CTX_BASE] + b * g
    first_admitted = counts[r, HEAD]
    flops = kv_bytes = 0.0
    computed = 0
    k = 0
    while counts[r, NUM_WAITING] > 0 and b + k < max_batch:
        w = counts[r, HEAD]
        counts[r, HEAD] = nxt[w]
        counts[r, NUM_WAITING] -= 1
        new = prompt[w] - cached[w]
        flops, kv_bytes = add_prefill(c, flops, kv_bytes, new, cached[w])
        computed += new
        counts[r, WAITING_PREFILL] -= new
        counts[r, WAITING_PROMPT] -= prompt[w]
        k += 1
    if counts[r, NUM_WAITING] == 0:
        counts[r, TAIL] = -1
    dt = step_time_s(c, flops, kv_bytes, computed, k, decode_context, b)
    end = clock[r, NOW] + dt
    counts[r, PREFILL_TOTAL] += computed
    clock[r, LAST_END] = end
    counts[r, LAST_PREFILL] = computed
    _finish_decoders(q, r, g, end)
    req = first_admitted
    for _ in range(k):
        first[req] = end
        if output[req] <= 1:
            finish[req] = end
        else:
            admitted[req] = g
            counts[r, CTX_BASE] += prompt[req] - g
            _heap_push(keys, vals, r, counts[r, NUM_RUNNING], g + output[req] - 1, req)
            counts[r, NUM_RUNNING] += 1
        req = nxt[req]
    clock[r, BUSY_S] += dt
    clock[r, NOW] = end
    counts[r, STEP] = g + 1


@jit
def _decode_run(q, r, t):
    """Decode-only steps up to the next completion or the first step
    starting at or after t."""
    c, clock, counts, keys = q[0], q[1], q[2], q[3]
    g = counts[r, STEP]
    b = counts[r, NUM_RUNNING]
    k_max = keys[r, 0] - g + 1
    context = counts[r, CTX_BASE] + b * g
    d0 = step_time_s(c, 0.0, 0.0, 0, 0, context, b)
    delta = (step_time_s(c, 0.0, 0.0, 0, 0, context + b, b) - d0) if k_max > 1 else 0.0
    k = k_max
    if t != math.inf:
        # Steps j = 0..k-1 start at now + j*d0 + delta*j*(j-1)/2; run those before t.
        k = min(k_max, _steps_starting_before(t - clock[r, NOW], d0, delta))
    dt = k * d0 + delta * k * (k - 1) / 2.0
    end = clock[r, NOW] + dt
    clock[r, BUSY_S] += dt
    clock[r, NOW] = end
    counts[r, STEP] = g + k
    counts[r, LAST_PREFILL] = 0
    _finish_decoders(q, r, g + k - 1, end)


@jit
def _steps_starting_before(span, d0, delta):
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
    if j >= 4.0e18:
        return 1 << 62
    k = max(1, int(math.ceil(j)))
    # Fix rounding at the boundary: k = number of starts strictly before span.
    while k > 1 and (k - 1) * d0 + delta * (k - 1) * (k - 2) / 2.0 >= span:
        k -= 1
    while k * d0 + delta * k * (k - 1) / 2.0 < span:
        k += 1
    return k
