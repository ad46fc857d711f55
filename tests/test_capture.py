"""The KV-event subscriber against vLLM's own ZMQ publisher (no engine, but
vLLM is imported: the engine tier): replay of dropped batches, gaps recorded
where replay cannot help, and a capture command that stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from prefix_study.capture.subscriber import KVEventSubscriber, capture
from prefix_study.traces.formats import TraceFormatError
from prefix_study.traces.formats.vllm_kv_events import load_capture

SRC = Path(__file__).resolve().parents[1] / "src"

pytestmark = pytest.mark.engine  # imports vLLM (~10 s)


def batch(i: int) -> KVEventBatch:
    """Batch i: block i+1 stored under block i (and block i-1 evicted every third)."""
    from vllm.distributed.kv_events import BlockRemoved, BlockStored, KVEventBatch

    events = [BlockStored(block_hashes=[i + 1], parent_block_hash=i or None, token_ids=[i] * 4,
                          block_size=4, lora_id=None, medium="CPU", lora_name=None)]
    if i % 3 == 2:
        events.append(BlockRemoved(block_hashes=[i - 1], medium="CPU"))
    return KVEventBatch(ts=time.time(), events=events)


@pytest.fixture
def publisher(tmp_path):
    from vllm.distributed.kv_events import ZmqEventPublisher  # a missing vLLM is an error, not a skip

    ends = (f"ipc://{tmp_path}/events", f"ipc://{tmp_path}/replay")
    pub = ZmqEventPublisher(0, endpoint=ends[0], replay_endpoint=ends[1], buffer_steps=100)
    yield pub, ends
    pub.shutdown()


def publish(pub, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        pub.publish(batch(i))


def receive(sub: KVEventSubscriber, until_seq: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sub.highest_seen < until_seq and time.monotonic() < deadline:
        sub.poll(50)


def test_dropped_batches_come_back_through_replay(publisher):
    pub, (events, replay) = publisher
    sub = KVEventSubscriber(events, replay, from_seq=0, drop_seqs=[2, 5])
    try:
        time.sleep(0.5)  # PUB/SUB: subscribed before the batches go out, so 2 and 5 arrive and are dropped
        publish(pub, 6)
        receive(sub, 5)
        sub.drain()
        table = pl.from_arrow(sub.take_table())
    finally:
        sub.close()
    assert sub.report.dropped_for_test == [2, 5] and sub.report.gaps == []
    assert table.filter(pl.col("event") == "stored")["batch_seq"].to_list() == list(range(6))
    assert table.filter(pl.col("event") == "stored")["block_hash"].to_list() == list(range(1, 7))
    assert table.filter(pl.col("event") == "removed")["block_hash"].to_list() == [1, 4]
    assert table.filter(pl.col("replayed"))["batch_seq"].unique().sort().to_list()[:1] == [2]


def test_without_replay_a_dropped_batch_is_a_gap(publisher):
    pub, (events, _) = publisher
    sub = KVEventSubscriber(events, None, from_seq=None, drop_seqs=[3, 5])
    try:
        time.sleep(0.5)  # PUB/SUB: a subscriber sees only what is sent after it joined
        publish(pub, 6)
        receive(sub, 5)
        sub.drain()
    finally:
        sub.close()
    # 3: a later batch showed it missing; 5: the last, known missing at the drain.
    assert sub.report.gaps == [[3, 3], [5, 5]]
    assert sub.report.first_seq == 0 and sub.report.batches == 4


# Also a new process importing vLLM (~15 s).
def test_capture_command_stops_on_sigterm_and_the_import_checks_it(publisher, tmp_path):
    pub, (events, replay) = publisher
    out = tmp_path / "cap"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "prefix_study.capture_cli", "listen", "--endpoint", events,
                             "--replay-endpoint", replay, "--from-seq", "0", "--out", str(out),
                             "--test-drop-seq", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob(".events.parquet.*")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # the command is subscribed once its temporary events file exists
        time.sleep(0.5)
        publish(pub, 4)
        time.sleep(2.0)
        assert not (out / "capture.json").exists()  # nothing looks complete while it runs
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    printed = json.loads(stdout.decode())
    assert printed["stopped_by"] == "signal" and printed["gaps"] == []
    manifest, frame = load_capture(out / "capture.json")
    assert manifest["complete"] and manifest["dropped_for_test"] == [1]
    assert frame.filter(pl.col("event") == "stored")["batch_seq"].to_list() == [0, 1, 2, 3]
    assert not list(out.glob(".*.tmp"))
    # No client log: refused, with what the events alone give.
    from prefix_study.traces.importers import import_trace

    with pytest.raises(TraceFormatError, match="no client log"):
        import_trace("vllm_kv_events", out / "capture.json", "cap", block_tokens=4)
    # A changed file is refused.
    pl.read_parquet(out / "events.parquet").head(2).write_parquet(out / "events.parquet")
    with pytest.raises(TraceFormatError, match="changed since the capture"):
        load_capture(out / "capture.json")
