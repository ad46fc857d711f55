"""Mooncake FAST'25 JSONL: one request per line.

Fields: timestamp (ms), input_length, output_length, hash_ids (ids of
512-token blocks). Format and block size: github.com/kvcache-ai/Mooncake,
FAST25-release/traces (linked from its README).
"""

from __future__ import annotations

from prefix_study.traces.formats import (
    ExternalRequest,
    hash_ids_field,
    int_field,
    number_field,
    register_trace_format,
)


@register_trace_format("mooncake", block_tokens=512, description="Mooncake FAST'25 (timestamp in ms)")
def parse_mooncake(rec: dict, index: int, workload: str) -> ExternalRequest:
    return ExternalRequest(
        request_id=f"{workload}-{index:07d}",
        time_s=number_field(rec, "timestamp") / 1000.0,
        input_length=int_field(rec, "input_length"),
        output_length=int_field(rec, "output_length"),
        hash_ids=hash_ids_field(rec),
    )
