"""Workloads on the real ShareGPT file: content, timing, the Parquet contract."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from prefix_study.assets.tokenizer import encode
from prefix_study.config.compose import compose_config
from prefix_study.workloads import (
    REQUEST_STREAM_SCHEMA,
    WorkloadError,
    build_scripts,
    build_workload_events,
    build_workload_file,
    build_workload_table,
    load_sharegpt,
    workload_summary,
)
from prefix_study.workloads.__main__ import main as demo_main
from prefix_study.workloads.arrivals import poisson_arrivals, think_times, workload_rng
from prefix_study.workloads.builders import (
    DOCUMENT_DEDUP_TOKENS,
    SUMMARY_INSTRUCTION,
    SUMMARY_SUFFIX,
    multi_turn_script,
)
from prefix_study.workloads.chat_format import reply_ids, text_ids, user_segment_ids
from prefix_study.workloads.sharegpt import Conversation, Turn

#: Bigger than the defaults, so the checks see many conversations and turns.
SAMPLE_OVERRIDES = [
    "workloads.chat_multi.num_conversations=150",
    "workloads.chat_multi.max_turns=8",
    "workloads.qa.num_conversations=200",
    "workloads.qa.num_contexts=5",
    "workloads.summarization.num_conversations=60",
]


@pytest.fixture(scope="module")
def cfg():
    return compose_config(SAMPLE_OVERRIDES)


@pytest.fixture(scope="module")
def data(cfg):
    return load_sharegpt(cfg)


def common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def test_dataset_counts_are_reported(data, cfg):
    report = data.report
    assert report.conversations_kept == cfg.dataset.max_conversations == len(data.conversations)
    assert report.records_read == report.conversations_kept + report.records_skipped
    assert report.records_skipped > 0 and set(report.skipped) <= {
        "not_a_record", "duplicate_id", "no_messages", "missing_role", "unknown_role",
        "empty_text", "roles_out_of_order", "no_reply"}
    assert f"read {report.records_read:,} records" in report.summary()


def test_chat_multi_turn_extends_previous_prompt_and_reply(cfg, data):
    wl = cfg.workloads.chat_multi
    frame = pl.from_arrow(build_workload_table(cfg, "chat_multi", data))
    multi_turn = 0
    for (_cid,), conv in frame.sort("turn_index").group_by("conversation_id", maintain_order=True):
        turns = conv.rows(named=True)
        assert [t["turn_index"] for t in turns] == list(range(len(turns)))
        assert all(t["mode"] == "multi" for t in turns)
        assert turns[0]["think_time_s"] == 0.0
        for prev, nxt in zip(turns, turns[1:]):
            multi_turn += 1
            head = prev["prompt_token_ids"] + prev["scripted_output_token_ids"]
            assert nxt["prompt_token_ids"][: len(head)] == head
            assert len(nxt["prompt_token_ids"]) > len(head)
            assert nxt["think_time_s"] > 0
            assert nxt["arrival_s"] == pytest.approx(prev["arrival_s"] + nxt["think_time_s"])
        for t in turns:
            assert len(t["prompt_token_ids"]) <= wl.max_prompt_tokens
            assert 0 < len(t["scripted_output_token_ids"]) <= wl.max_reply_tokens
        assert len(turns) <= wl.max_turns
    assert multi_turn >= 100  # the sample really has later turns


def test_chat_multi_replies_are_the_dataset_replies_cut(cfg, data):
    wl = cfg.workloads.chat_multi
    by_id = {c.id: c for c in data.conversations}
    for script in build_scripts(cfg, "chat_multi", data):
        conv = by_id[script.source_id]
        for k, turn in enumerate(script.turns):
            assert list(turn.scripted_output_token_ids) == reply_ids(conv.turns[k].assistant,
                                                                     wl.max_reply_tokens)
        # Stops at max_turns, the end of the conversation, or before the prompt would overflow.
        n = len(script.turns)
        if n < min(wl.max_turns, len(conv.turns)):
            last = script.turns[-1]
            grown = (len(last.prompt_token_ids) + len(last.scripted_output_token_ids)
                     + len(user_segment_ids(conv.turns[n].user, first=False)))
            assert grown > wl.max_prompt_tokens


def test_multi_turn_script_stops_before_prompt_overflows():
    conv = Conversation("c", 0, tuple(Turn(f"question number {i} " * 10, "answer " * 50)
                                      for i in range(6)))
    roomy = multi_turn_script(conv, max_turns=10, max_prompt_tokens=10_000, max_reply_tokens=20)
    assert len(roomy.turns) == 6
    limit = len(roomy.turns[2].prompt_token_ids)  # turn 2 fits exactly, turn 3 does not
    tight = multi_turn_script(conv, max_turns=10, max_prompt_tokens=limit, max_reply_tokens=20)
    assert tight.turns == roomy.turns[:3]
    assert multi_turn_script(conv, 10, max_prompt_tokens=3, max_reply_tokens=20) is None
    assert len(multi_turn_script(conv, 2, 10_000, 20).turns) == 2


def test_chat_single_is_one_first_message_per_conversation(cfg, data):
    frame = pl.from_arrow(build_workload_table(cfg, "chat_single", data))
    wl = cfg.workloads.chat_single
    assert frame.height == frame["conversation_id"].n_unique() == wl.num_conversations
    assert frame["turn_index"].to_list() == [0] * frame.height
    assert set(frame["mode"]) == {"single"} and frame["think_time_s"].sum() == 0.0
    by_id = {c.id: c for c in data.conversations}
    for script in build_scripts(cfg, "chat_single", data):
        (turn,) = script.turns
        first = by_id[script.source_id].turns[0]
        assert list(turn.prompt_token_ids) == user_segment_ids(first.user, first=True)
        assert list(turn.scripted_output_token_ids) == reply_ids(first.assistant, wl.max_reply_tokens)


def test_qa_requests_share_their_context_prefix(cfg, data):
    wl = cfg.workloads.qa
    scripts = build_scripts(cfg, "qa", data)
    assert len(scripts) == wl.num_conversations
    groups: dict[str, list[tuple[int, ...]]] = {}
    for s in scripts:
        groups.setdefault(s.shared_prefix_group, []).append(s.turns[0].prompt_token_ids)
    assert 1 < len(groups) <= wl.num_contexts
    for prompts in groups.values():
        for other in prompts[1:]:
            assert common_prefix(prompts[0], other) >= wl.context_tokens
    firsts = [prompts[0] for prompts in groups.values()]
    for i, a in enumerate(firsts):
        for b in firsts[i + 1:]:
            assert common_prefix(a, b) < 16  # distinct contexts share no 16-token block
    questions = [s.turns[0].prompt_token_ids[wl.context_tokens:] for s in scripts]
    assert len(set(questions)) == len(questions)
    by_id = {c.id: c for c in data.conversations}
    for s in scripts:
        question = by_id[s.source_id].turns[0].user
        assert len(text_ids(question)) <= wl.max_question_tokens
        # The context is exactly context_tokens long; the question segment follows it.
        assert list(s.turns[0].prompt_token_ids[wl.context_tokens:]) == user_segment_ids(
            question, first=False)
    frame = pl.from_arrow(build_workload_table(cfg, "qa", data))
    contexts = {tuple(ids[: wl.context_tokens]) for ids in frame["prompt_token_ids"].to_list()}
    assert len(contexts) == len(groups)


def test_summarization_documents_are_distinct_and_long(cfg, data):
    wl = cfg.workloads.summarization
    frame = pl.from_arrow(build_workload_table(cfg, "summarization", data))
    head, tail = len(encode(SUMMARY_INSTRUCTION)), len(encode(SUMMARY_SUFFIX))
    prompts = frame["prompt_token_ids"].to_list()
    assert len(prompts) == wl.num_conversations
    documents = [tuple(p[head:-tail]) for p in prompts]
    assert len(set(documents)) == len(documents)
    for p, doc in zip(prompts, documents):
        assert wl.min_document_tokens <= len(doc) and len(p) <= wl.max_prompt_tokens
    for i, a in enumerate(prompts):
        for b in prompts[i + 1:]:
            assert common_prefix(a, b) < head + DOCUMENT_DEDUP_TOKENS


def test_same_config_and_seed_give_identical_bytes(tmp_path, cfg, data):
    for name in cfg.workloads:
        a = build_workload_file(cfg, name, tmp_path / "a" / f"{name}.parquet")
        b = build_workload_file(cfg, name, tmp_path / "b" / f"{name}.parquet")
        assert a.read_bytes() == b.read_bytes(), name
        assert pq.read_schema(a).equals(REQUEST_STREAM_SCHEMA)
        frame = pl.read_parquet(a)
        assert frame.equals(frame.sort(["arrival_s", "request_id"]))
        assert frame["request_id"].n_unique() == frame.height
        assert set(frame["workload"]) == {name}
    other = compose_config(SAMPLE_OVERRIDES + ["seed=1"])
    c = build_workload_file(other, "chat_multi", tmp_path / "c.parquet")
    assert c.read_bytes() != (tmp_path / "a" / "chat_multi.parquet").read_bytes()


def test_request_ids_and_summary(cfg, data):
    events = build_workload_events(cfg, "chat_multi", data)
    e = next(e for e in events if e.turn_index == 1)
    assert e.request_id == f"{e.conversation_id}-01" and e.conversation_id.startswith("chat_multi-")
    frame = pl.from_arrow(build_workload_table(cfg, "chat_multi", data))
    summary = workload_summary(frame)
    lengths = np.array([len(p) for p in frame["prompt_token_ids"].to_list()])
    assert summary["requests"] == len(events) == frame.height
    assert summary["conversations"] == cfg.workloads.chat_multi.num_conversations
    assert summary["prompt_tokens_mean"] == pytest.approx(lengths.mean())
    assert summary["prompt_tokens_p50"] == pytest.approx(np.median(lengths))
    assert summary["prompt_tokens_p99"] <= lengths.max()


def test_poisson_arrivals_and_think_times():
    rng = workload_rng(0, "x", "arrivals")
    times = poisson_arrivals(rng, 20_000, rate_per_s=4.0)
    assert np.all(np.diff(times) > 0)
    assert np.mean(np.diff(times)) == pytest.approx(0.25, rel=0.03)
    lognormal = SimpleNamespace(distribution="lognormal", mean_s=2.0, sigma=0.5)
    assert think_times(workload_rng(0, "x", "think_time"), 20_000, lognormal).mean() == pytest.approx(
        2.0, rel=0.03)
    constant = SimpleNamespace(distribution="constant", mean_s=1.5, sigma=0.5)
    assert set(think_times(rng, 5, constant)) == {1.5}
    # Streams differ by workload and purpose, and repeat for the same ones.
    assert workload_rng(0, "a", "select").random() != workload_rng(0, "b", "select").random()
    assert workload_rng(0, "a", "select").random() != workload_rng(0, "a", "assign").random()
    assert workload_rng(0, "a", "select").random() == workload_rng(0, "a", "select").random()


def test_closed_loop_think_time_config_reaches_the_stream(data):
    cfg = compose_config(["workloads.chat_multi.think_time.distribution=constant",
                          "workloads.chat_multi.think_time.mean_s=3.0"])
    frame = pl.from_arrow(build_workload_table(cfg, "chat_multi", data))
    later = frame.filter(pl.col("turn_index") > 0)
    assert later.height > 0 and set(later["think_time_s"]) == {3.0}


def test_bad_requests_fail_with_the_key_named(data, tmp_path):
    # One conversation more than a small loaded pool (the builder reads the
    # whole pool before it can tell: 100 conversations, not 2,000).
    cfg = compose_config(["dataset.max_conversations=100", "workloads.chat_single.num_conversations=101"])
    with pytest.raises(WorkloadError, match="raise dataset.max_conversations"):
        build_workload_events(cfg, "chat_single", load_sharegpt(cfg))
    cfg = compose_config(["workloads.summarization.max_prompt_tokens=300"])
    with pytest.raises(WorkloadError, match="min_document_tokens"):
        build_workload_events(cfg, "summarization", data)
    trace = tmp_path / "x.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 512, "output_length": 1, "hash_ids": [1]}\n')
    cfg = compose_config(["+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}"])
    with pytest.raises(WorkloadError, match="traces stage"):
        build_workload_file(cfg, "mc", tmp_path / "mc.parquet")
    assert not (tmp_path / "mc.parquet").exists()


def test_demo_prints_single_then_multi_turn_events(capsys):
    demo_main(["--count", "6"])
    out = capsys.readouterr().out
    assert "kept 2,000 conversations" in out
    single, multi = out.split("== multi-turn events")
    assert single.count("mode=single") == 6 and "mode=multi" not in single
    assert multi.count("mode=multi") == 6 and "turn=1" in multi
