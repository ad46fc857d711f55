"""Send a request stream to an OpenAI-compatible vLLM server, and log it.

The real `openai` client (async) sends each request to `/v1/completions`
with its prompt as token ids (no chat template: the server sees exactly the
stream's tokens), streams the reply, and records per request the send time,
the first token's time, the end, the prompt and output token ids (vLLM's
`return_token_ids`) and `usage.prompt_tokens_details.cached_tokens` (the
server's own count; it needs `--enable-prompt-tokens-details`).

Timing follows the stream: a conversation's first turn is sent at
`arrival_s * time_scale` seconds after the start, a later turn
`think_time_s * time_scale` after its previous turn's reply ended (closed
loop). With `time_scale=0` the times only order the requests: each turn is
ready at its virtual time (arrival plus the think times before it), sent
as soon as a slot is free and its previous turn has ended. At most
`max_in_flight` requests are outstanding (the server's `max_num_seqs`:
more would only wait in the server's queue, in an order decided by HTTP
races); ready requests wait in the client in ready-time order.

`request_args(row) -> (max_tokens, vllm_xargs)` gives each request's
per-request arguments: vLLM copies `vllm_xargs` (extra_body) into
`SamplingParams.extra_args`, where the token simulator reads its mode and
script (engine/simulator.py).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from tqdm import tqdm

from prefix_study.io import write_text


@dataclass
class ClientRecord:
    """One request as the client saw it (one line of the client log).

    Times are time.time() (the same clock as the events' `ts` on one host).
    """

    request_id: str
    workload: str
    conversation_id: str
    turn_index: int
    sent_s: float
    first_token_s: float | None
    finished_s: float
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    prompt_tokens: int          # usage.prompt_tokens
    completion_tokens: int      # usage.completion_tokens
    cached_tokens: int | None   # usage.prompt_tokens_details.cached_tokens


RequestArgs = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def conversation_order(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Rows by conversation and turn, and each row's next turn (row index)."""
    rows = sorted(rows, key=lambda r: (r["conversation_id"], r["turn_index"]))
    nxt = {i: i + 1 for i in range(len(rows) - 1)
           if rows[i + 1]["conversation_id"] == rows[i]["conversation_id"]}
    return rows, nxt


def virtual_ready_times(rows: Sequence[dict[str, Any]], nxt: dict[int, int]) -> dict[int, float]:
    """Each turn's ready time when replies take no time: arrival plus the
    think times of the turns before it."""
    later = set(nxt.values())
    ready: dict[int, float] = {}
    for i, r in enumerate(rows):
        if i not in later:
            t, j = float(r["arrival_s"]), i
            ready[j] = t
            while j in nxt:
                j = nxt[j]
                t += float(rows[j].get("think_time_s") or 0.0)
                ready[j] = t
    return ready


async def _one(client: Any, model: str, row: dict[str, Any], request_args: RequestArgs) -> ClientRecord:
    max_tokens, xargs = request_args(row)
    prompt = [int(t) for t in row["prompt_token_ids"]]
    sent = time.time()
    stream = await client.completions.create(
        model=model, prompt=prompt, max_tokens=max_tokens, temperature=0.0, stream=True,
        stream_options={"include_usage": True},
        extra_body={"vllm_xargs": xargs, "return_token_ids": True, "ignore_eos": True})
    first = None
    output: list[int] = []
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            ids = (choice.model_extra or {}).get("token_ids") or []
            if ids and first is None:
                first = time.time()
            output.extend(int(t) for t in ids)
        if chunk.usage is not None:
            usage = chunk.usage
    finished = time.time()
    if usage is None:
        raise RuntimeError(f"request {row['request_id']}: the server sent no usage")
    details = usage.prompt_tokens_details
    return ClientRecord(
        request_id=str(row["request_id"]), workload=str(row["workload"]),
        conversation_id=str(row["conversation_id"]), turn_index=int(row["turn_index"]),
        sent_s=sent, first_token_s=first, finished_s=finished, prompt_token_ids=prompt,
        output_token_ids=output, prompt_tokens=int(usage.prompt_tokens),
        completion_tokens=int(usage.completion_tokens),
        cached_tokens=None if details is None or details.cached_tokens is None else int(details.cached_tokens))


async def send_stream(base_url: str, model: str, rows: Sequence[dict[str, Any]], request_args: RequestArgs,
                      max_in_flight: int, time_scale: float = 0.0, progress: bool = True,
                      desc: str = "server", timeout_s: float = 600.0) -> list[ClientRecord]:
    """Send every row (a request stream's rows) and return the records in
    completion order. A failed request fails the whole run."""
    from openai import AsyncOpenAI

    if max_in_flight < 1:
        raise ValueError(f"max_in_flight={max_in_flight}: must be >= 1")
    rows, nxt = conversation_order(rows)
    virtual = virtual_ready_times(rows, nxt)
    later = set(nxt.values())
    start = time.monotonic()
    # (ready time, virtual time, request id, row): real time when time_scale > 0.
    ready: list[tuple[float, float, str, int]] = []

    def push(i: int, real_ready: float) -> None:
        key = real_ready if time_scale > 0 else virtual[i]
        heapq.heappush(ready, (key, virtual[i], str(rows[i]["request_id"]), i))

    for i in range(len(rows)):
        if i not in later:
            push(i, start + float(rows[i]["arrival_s"]) * time_scale)
    records: list[ClientRecord] = []
    in_flight: dict[asyncio.Task, int] = {}
    bar = tqdm(total=len(rows), desc=desc, unit="req", disable=not progress, mininterval=0.5)
    async with AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=timeout_s) as client:
        try:
            while ready or in_flight:
                while ready and len(in_flight) < max_in_flight and \
                        (time_scale == 0 or ready[0][0] <= time.monotonic()):
                    _, _, _, i = heapq.heappop(ready)
                    in_flight[asyncio.ensure_future(_one(client, model, rows[i], request_args))] = i
                wait = None
                if ready and time_scale > 0 and len(in_flight) < max_in_flight:
                    wait = max(0.0, ready[0][0] - time.monotonic())
                if not in_flight:
                    await asyncio.sleep(wait or 0.0)
                    continue
                done, _ = await asyncio.wait(in_flight, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    i = in_flight.pop(task)
                    records.append(task.result())
                    bar.update(1)
                    if i in nxt:
                        j = nxt[i]
                        push(j, time.monotonic() + float(rows[j].get("think_time_s") or 0.0) * time_scale)
        finally:
            for task in in_flight:
                task.cancel()
            bar.close()
    return records


def write_client_log(records: Sequence[ClientRecord], path: str) -> None:
    """The client log: one JSON object per request, by send time."""
    lines = [json.dumps(asdict(r), sort_keys=True) for r in sorted(records, key=lambda r: (r.sent_s, r.request_id))]
    write_text("\n".join(lines) + ("\n" if lines else ""), path)
