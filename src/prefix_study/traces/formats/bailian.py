"""Alibaba Bailian JSONL: one request per line.

Fields: chat_id, parent_chat_id, timestamp (s), input_length, output_length,
type, turn, hash_ids (ids of 16-token blocks, as the trace release states;
the project keeps no copy of its documentation, so this is not re-checked).
"""

from __future__ import annotations

from prefix_study.traces.formats import (
    ExternalRequest,
    hash_ids_field,
    int_field,
    number_field,
    register_trace_format,
)


@register_trace_format("bailian", block_tokens=16, description="Alibaba Bailian (timestamp in s)")
def parse_bailian(rec: dict, index: int, workload: str) -> ExternalRequest:
    chat_id = rec.get("chat_id")
    if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
        raise ValueError(f"field 'chat_id' must be an integer or string, got {chat_id!r}")
    for key in ("parent_chat_id", "turn", "type"):
        if key not in rec:
            raise ValueError(f"missing field {key!r}")
    return ExternalRequest(
        request_id=f"{workload}-{chat_id}",
        time_s=number_field(rec, "timestamp"),
        input_length=int_field(rec, "input_length"),
        output_length=int_field(rec, "output_length"),
        hash_ids=hash_ids_field(rec),
    )
