"""The ShareGPT client simulator: conversation scripts -> timed request events.

A builder decides *what* each conversation sends (token ids per turn and the
scripted reply); the client decides *when*. Conversations open at Poisson
arrivals; turn k+1 of a conversation follows turn k after a think time. The
event's `arrival_s` for a later turn is nominal (zero service time assumed);
`think_time_s` lets the engine driver re-time it after the previous turn
actually finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prefix_study.assets.tokenizer import decode
from prefix_study.workloads.arrivals import poisson_arrivals, think_times

MODES = ("single", "multi")


@dataclass(frozen=True)
class ScriptedTurn:
    """One request's content: the prompt and the reply the engine will be made to emit."""

    prompt_token_ids: tuple[int, ...]
    scripted_output_token_ids: tuple[int, ...]


@dataclass(frozen=True)
class ConversationScript:
    """What one simulated user sends, turn by turn.

    `shared_prefix_group` names requests built on purpose behind the same
    prefix (the qa context); it is for checks and reports, not the stream.
    """

    mode: str
    turns: tuple[ScriptedTurn, ...]
    source_id: str = ""
    shared_prefix_group: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.turns:
            raise ValueError("a conversation script needs at least one turn")


@dataclass(frozen=True)
class RequestEvent:
    """One row of `workloads/{workload}.parquet`."""

    request_id: str
    workload: str
    conversation_id: str
    turn_index: int
    mode: str
    arrival_s: float
    think_time_s: float
    prompt_token_ids: tuple[int, ...]
    scripted_output_token_ids: tuple[int, ...]
    prompt_text: str = field(repr=False)

    @property
    def sort_key(self) -> tuple[float, str]:
        return (self.arrival_s, self.request_id)


def conversation_id(workload: str, index: int) -> str:
    return f"{workload}-{index:06d}"


def request_id(workload: str, index: int, turn_index: int) -> str:
    return f"{conversation_id(workload, index)}-{turn_index:02d}"


def schedule_requests(
    workload: str,
    scripts: list[ConversationScript],
    arrival_rate: float,
    think_time: Any,
    arrival_rng: np.random.Generator,
    think_rng: np.random.Generator,
) -> list[RequestEvent]:
    """Time every turn of every script; return events sorted by (arrival_s, request_id)."""
    starts = poisson_arrivals(arrival_rng, len(scripts), arrival_rate)
    pauses = iter(think_times(think_rng, sum(len(s.turns) - 1 for s in scripts), think_time))
    events: list[RequestEvent] = []
    for index, (script, start) in enumerate(zip(scripts, starts)):
        arrival = float(start)
        for turn_index, turn in enumerate(script.turns):
            pause = 0.0 if turn_index == 0 else float(next(pauses))
            arrival += pause
            events.append(RequestEvent(
                request_id=request_id(workload, index, turn_index),
                workload=workload,
                conversation_id=conversation_id(workload, index),
                turn_index=turn_index,
                mode=script.mode,
                arrival_s=arrival,
                think_time_s=pause,
                prompt_token_ids=turn.prompt_token_ids,
                scripted_output_token_ids=turn.scripted_output_token_ids,
                prompt_text=decode(list(turn.prompt_token_ids)),
            ))
    events.sort(key=lambda e: e.sort_key)
    return events
