"""The mixed engine request stream (workloads/mixed_stream.py)."""

from __future__ import annotations

import polars as pl
import pytest

from prefix_study.workloads.mixed_stream import first_conversations, mixed_request_stream


def stream(workload: str, convs: list[tuple[float, int]]) -> pl.DataFrame:
    rows = []
    for c, (arrival, turns) in enumerate(convs):
        for t in range(turns):
            rows.append({"request_id": f"{workload}-{c:06d}-{t:02d}", "workload": workload,
                         "conversation_id": f"{workload}-{c:06d}", "turn_index": t,
                         "arrival_s": arrival + t, "think_time_s": 0.0 if t == 0 else 1.0,
                         "prompt_token_ids": [c, t], "scripted_output_token_ids": [1]})
    return pl.DataFrame(rows, schema_overrides={"turn_index": pl.Int32,
                                                "prompt_token_ids": pl.List(pl.Int32),
                                                "scripted_output_token_ids": pl.List(pl.Int32)})


def first_turn_order(frame: pl.DataFrame) -> list[str]:
    return frame.filter(pl.col("turn_index") == 0).sort("arrival_s", maintain_order=True)[
        "conversation_id"].to_list()


def test_round_robin_takes_turns_on_the_superposed_arrival_times():
    a = stream("a", [(0.0, 2), (0.1, 1), (0.2, 1)])
    b = stream("b", [(5.0, 1), (6.0, 3)])
    mixed = mixed_request_stream({"a": a, "b": b}, "round_robin")
    assert mixed.height == a.height + b.height
    assert first_turn_order(mixed) == ["a-000000", "b-000000", "a-000001", "b-000001", "a-000002"]
    assert sorted(mixed.filter(pl.col("turn_index") == 0)["arrival_s"]) == [0.0, 0.1, 0.2, 5.0, 6.0]
    later = mixed.filter(pl.col("turn_index") > 0).sort("request_id")
    assert later.equals(pl.concat([a, b]).filter(pl.col("turn_index") > 0).sort("request_id"))
    burst = mixed_request_stream({"a": a, "b": b}, "round_robin", burst=2)
    assert first_turn_order(burst) == ["a-000000", "a-000001", "b-000000", "b-000001", "a-000002"]


def test_timestamp_keeps_arrivals_and_rejects_bad_input():
    a = stream("a", [(0.0, 1), (3.0, 1)])
    b = stream("b", [(1.0, 1)])
    mixed = mixed_request_stream({"a": a, "b": b}, "timestamp")
    assert mixed["request_id"].to_list() == ["a-000000-00", "b-000000-00", "a-000001-00"]
    with pytest.raises(ValueError, match="mix.pattern"):
        mixed_request_stream({"a": a}, "zigzag")
    with pytest.raises(ValueError, match="holds rows of"):
        mixed_request_stream({"b": a})


def test_workloads_may_not_share_conversations():
    a = stream("a", [(0.0, 2)])
    b = stream("b", [(0.5, 1)]).with_columns(pl.lit("a-000000").alias("conversation_id"))
    with pytest.raises(ValueError, match="conversation ids repeat across workloads"):
        mixed_request_stream({"a": a, "b": b})


def test_first_conversations_keeps_every_turn_of_the_earliest():
    a = stream("a", [(0.3, 2), (0.1, 3), (0.2, 1)])
    kept = first_conversations(a, 2)
    assert sorted(kept["conversation_id"].unique().to_list()) == ["a-000001", "a-000002"]
    assert kept.height == 4 and kept.columns == a.columns
    assert first_conversations(a, 10).equals(a)
