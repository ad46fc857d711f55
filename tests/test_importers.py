"""External trace importers on small files written here, in each format."""

from __future__ import annotations

import json

import pytest

from prefix_study.replay import encode_trace, infinite_cache_hits, replay
from prefix_study.traces.importers import TRACE_SCHEMA, TraceFormatError, import_trace


def write_jsonl(path, records, raw_lines=()):
    lines = [json.dumps(r) for r in records]
    for at, text in raw_lines:
        lines.insert(at, text)
    path.write_text("\n".join(lines) + "\n")
    return path


MOONCAKE = [
    {"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [0, 1, 2]},
    {"timestamp": 500, "input_length": 1500, "output_length": 5, "hash_ids": [0, 1, 3]},
    {"timestamp": 1500, "input_length": 600, "output_length": 7, "hash_ids": [4, 1]},
]
BAILIAN = [
    {"chat_id": 10, "parent_chat_id": -1, "timestamp": 1.5, "input_length": 40, "output_length": 8,
     "type": "text", "turn": 1, "hash_ids": [7, 8, 9]},
    {"chat_id": 11, "parent_chat_id": 10, "timestamp": 0.5, "input_length": 60, "output_length": 8,
     "type": "text", "turn": 2, "hash_ids": [7, 8, 9, 12]},
]


def test_mooncake_rows_and_chained_hashes(tmp_path):
    frame, report = import_trace("mooncake", write_jsonl(tmp_path / "m.jsonl", MOONCAKE), "mc")
    assert dict(frame.schema) == TRACE_SCHEMA
    assert frame.height == 8 and report["requests"] == 3 and report["blocks"] == 8
    assert frame["position"].to_list() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert frame["time_s"].to_list() == [0.0] * 3 + [0.5] * 3 + [1.5] * 2
    assert frame["request_id"].n_unique() == 3 and frame["workload"].unique().to_list() == ["mc"]
    assert frame["engine_hit"].null_count() == 8 and frame["lookup"].all()
    h = frame["block_hash"].to_list()
    assert h[0] == h[3] and h[1] == h[4]  # same prefix, same hash
    assert h[1] != h[7]  # id 1 under a different prefix is a different block
    trace = encode_trace(frame)
    assert infinite_cache_hits(trace) == 2
    assert replay(trace, "lru", 100, "prefix").hits == 2
    assert report["distinct_blocks"] == 6 and report["skipped_lines"] == 0


def test_bailian_sorted_by_timestamp(tmp_path):
    frame, report = import_trace("bailian", write_jsonl(tmp_path / "b.jsonl", BAILIAN), "bl")
    assert report["sorted_by_timestamp"] is True
    assert frame["request_id"].unique(maintain_order=True).to_list() == ["bl-11", "bl-10"]
    assert frame["time_s"].to_list()[0] == 0.5
    h = frame["block_hash"].to_list()
    assert h[:3] == h[4:7]
    assert report["block_tokens"] == 16


@pytest.mark.parametrize("bad_line", [
    "{not json",
    json.dumps({"timestamp": 1, "input_length": 10, "output_length": 1}),  # no hash_ids
    json.dumps({"timestamp": 1, "input_length": -3, "output_length": 1, "hash_ids": [1]}),
    json.dumps({"timestamp": 1, "input_length": 3, "output_length": 1, "hash_ids": ["x"]}),
    json.dumps([1, 2, 3]),
])
def test_bad_line_fails_with_its_line_number(tmp_path, bad_line):
    path = write_jsonl(tmp_path / "m.jsonl", MOONCAKE, raw_lines=[(2, bad_line)])
    with pytest.raises(TraceFormatError, match=r"m\.jsonl:3: "):
        import_trace("mooncake", path, "mc")


def test_bad_lines_skipped_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", MOONCAKE, raw_lines=[(1, "{oops"), (3, ""), (4, '{"timestamp": 2}')])
    frame, report = import_trace("mooncake", path, "mc", skip_bad_lines=True)
    assert report["requests"] == 3 and frame.height == 8
    assert report["skipped_lines"] == 2 and report["blank_lines"] == 1
    assert [s["line"] for s in report["skipped"]] == [2, 5]
    assert "hash_ids" in report["skipped"][1]["error"] or "field" in report["skipped"][1]["error"]


def test_bailian_bad_line_and_max_requests(tmp_path):
    bad = dict(BAILIAN[0], chat_id=None)
    path = write_jsonl(tmp_path / "b.jsonl", [BAILIAN[0], bad, BAILIAN[1]])
    with pytest.raises(TraceFormatError, match=r"b\.jsonl:2: .*chat_id"):
        import_trace("bailian", path, "bl")
    frame, report = import_trace("bailian", path, "bl", max_requests=1, skip_bad_lines=True)
    assert report["requests"] == 1 and report["lines_read"] == 1 and frame.height == 3


def test_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        import_trace("nope", tmp_path / "x.jsonl", "w")
