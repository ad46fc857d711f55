"""Subscribe to a vLLM server's ZMQ KV-event publisher and keep every event.

vLLM (`--kv-events-config '{"enable_kv_cache_events": true, "publisher":
"zmq", "endpoint": ..., "replay_endpoint": ...}'`) publishes one message per
engine step with events: `(topic, seq as 8 big-endian bytes, msgpack of a
KVEventBatch)`, `seq` counting from 0 (vllm/distributed/kv_events.py,
ZmqEventPublisher). Decoding uses vLLM's own `KVEventBatch` struct and
msgspec's msgpack decoder.

PUB/SUB drops messages when a subscriber joins late or falls behind the
high-water mark. Every missing sequence number is asked from the publisher's
replay endpoint (a ROUTER: send `b""` + the first wanted seq from a DEALER,
receive `(b"", topic, seq, payload)` per buffered batch, then seq -1). What
replay cannot return (no replay endpoint, or the batch left the publisher's
buffer of `buffer_steps`) is recorded as a gap in the capture's manifest and
never filled: the importer refuses a capture with gaps.

A capture directory holds `events.parquet` (one row per block, the columns of
`CAPTURE_EVENT_SCHEMA`), optionally `requests.jsonl` (the client log) and
`capture.json` (the manifest: endpoint, sequence numbers, gaps, checksums of
the other files). Every file is written atomically, the manifest last, so an
interrupted capture leaves no file that looks complete.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from prefix_study.io import atomic_path, sha256_file, write_json
from prefix_study.traces.schema import as_uint64

#: The publisher's end-of-replay marker (ZmqEventPublisher.END_SEQ).
END_SEQ = -1
EVENTS_FILE = "events.parquet"
CLIENT_LOG_FILE = "requests.jsonl"
MANIFEST_FILE = "capture.json"
#: Capture format version, in the manifest.
CAPTURE_VERSION = 1

#: One row per block of every event: `seq` row number, `batch_seq` the
#: publisher's sequence number of the message, `event_index` the event's
#: number in the capture, `ts` the engine's time.time() when the batch was
#: made, `received_s` when it arrived here (time.time()), `replayed` whether
#: it came through the replay endpoint, `block_size` and `token_ids` the
#: block's tokens (stored only), `extra_keys` whether vLLM hashed extra keys
#: (LoRA, salt, multimodal) into the block.
CAPTURE_EVENT_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("batch_seq", pa.int64()), ("event_index", pa.int64()),
    ("ts", pa.float64()), ("received_s", pa.float64()), ("replayed", pa.bool_()),
    ("event", pa.string()), ("block_hash", pa.uint64()), ("parent_block_hash", pa.uint64()),
    ("num_tokens", pa.int32()), ("block_size", pa.int32()), ("token_ids", pa.list_(pa.int32())),
    ("extra_keys", pa.bool_()), ("medium", pa.string()),
])


@dataclass
class CaptureReport:
    """What a capture saw; the manifest's body."""

    endpoint: str
    replay_endpoint: str | None
    topic: str
    from_seq: int | None
    first_seq: int | None = None
    last_seq: int | None = None
    batches: int = 0
    events: int = 0
    rows: int = 0
    replayed_batches: int = 0
    duplicate_batches: int = 0
    #: Missing sequence numbers replay did not return: [first, last] each.
    gaps: list[list[int]] = field(default_factory=list)
    #: Batches the test flag `drop_seqs` threw away on purpose.
    dropped_for_test: list[int] = field(default_factory=list)
    started_s: float = 0.0
    stopped_s: float = 0.0
    stopped_by: str = ""
    data_parallel_ranks: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.gaps


class KVEventSubscriber:
    """A ZMQ SUB socket on vLLM's KV-event publisher, with replay of gaps.

    endpoint: the publisher's `endpoint`. vLLM binds endpoints with `*`, `::`
    or ipc:// and connects to others (tcp://127.0.0.1:P), in which case this
    side must bind (`bind=True`). from_seq: the first sequence number wanted
    (0 for a server started with the capture: everything it published); None
    takes the stream from the first message that arrives.
    drop_seqs: test flag, batches to discard on first receipt (simulating a
    lost message; replay, if available, brings them back).
    """

    def __init__(self, endpoint: str, replay_endpoint: str | None = None, *, bind: bool = False,
                 topic: str = "", from_seq: int | None = None, drop_seqs: Iterable[int] = (),
                 replay_timeout_s: float = 5.0) -> None:
        import msgspec
        import zmq
        from vllm.distributed.kv_events import KVEventBatch

        self._zmq = zmq
        self._decoder = msgspec.msgpack.Decoder(type=KVEventBatch)
        self._ctx = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.RCVHWM, 0)
        (self._sub.bind if bind else self._sub.connect)(endpoint)
        self._sub.setsockopt_string(zmq.SUBSCRIBE, topic)
        self._replay_endpoint = replay_endpoint
        self._replay_timeout_ms = int(replay_timeout_s * 1000)
        self._drop = set(int(s) for s in drop_seqs)
        self.expected: int | None = from_seq
        self.report = CaptureReport(endpoint=endpoint, replay_endpoint=replay_endpoint, topic=topic,
                                    from_seq=from_seq, started_s=time.time())
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None
        self.last_message_s: float | None = None
        #: Highest sequence number that arrived (kept or not).
        self.highest_seen = -1
        self._lock = threading.Lock()

    # --- receiving ---------------------------------------------------------------

    def poll(self, timeout_ms: int = 100) -> int:
        """Receive what arrives within `timeout_ms`; returns batches kept."""
        kept = 0
        if not self._sub.poll(timeout_ms):
            return 0
        while True:
            try:
                frames = self._sub.recv_multipart(flags=self._zmq.NOBLOCK)
            except self._zmq.Again:
                return kept
            kept += self._accept(frames, replayed=False)

    def _accept(self, frames: list[bytes], replayed: bool) -> int:
        _, seq_bytes, payload = frames
        seq = int.from_bytes(seq_bytes, "big", signed=True)
        self.last_message_s = time.time()
        self.highest_seen = max(self.highest_seen, seq)
        if not replayed and seq in self._drop:
            self._drop.discard(seq)
            self.report.dropped_for_test.append(seq)
            return 0
        if self.expected is None:
            self.expected = seq
        if seq < self.expected:
            self.report.duplicate_batches += 1
            return 0
        if seq > self.expected:
            self._fill(self.expected, seq - 1)
            if seq < self.expected:  # replay brought it already
                self.report.duplicate_batches += 1
                return 0
        self._keep(seq, self._decoder.decode(payload), replayed)
        self.expected = seq + 1
        return 1

    def _fill(self, first: int, last: int) -> None:
        """Ask replay for [first, last]; record what stays missing as a gap."""
        self.expected = first
        self.replay(first, upto=last)
        if self.expected <= last:
            self.report.gaps.append([self.expected, last])
            self.expected = last + 1

    def replay(self, start: int, upto: int | None = None) -> int:
        """Batches from `start` (to `upto`) through the replay endpoint, in order;
        returns how many were kept. 0 without a replay endpoint."""
        if self._replay_endpoint is None or self.expected is None:
            return 0
        zmq = self._zmq
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        kept = 0
        try:
            sock.connect(self._replay_endpoint)
            sock.send_multipart((b"", int(start).to_bytes(8, "big")))
            while sock.poll(self._replay_timeout_ms):
                _, topic, seq_bytes, payload = sock.recv_multipart()
                seq = int.from_bytes(seq_bytes, "big", signed=True)
                if seq == END_SEQ:
                    break
                if seq < self.expected or (upto is not None and seq > upto):
                    continue  # held already / will come through the subscription
                if seq > self.expected:  # the buffer no longer holds it: a gap
                    self.report.gaps.append([self.expected, seq - 1])
                self._keep(seq, self._decoder.decode(payload), True)
                self.expected = seq + 1
                self.report.replayed_batches += 1
                kept += 1
        finally:
            sock.close(linger=0)
        return kept

    def drain(self) -> int:
        """Everything the publisher has sent so far, through replay (the
        subscription may lag): call after the traffic, before `close`."""
        if self.expected is None:
            if self.report.from_seq is None:
                return 0
            self.expected = self.report.from_seq
        kept = self.replay(self.expected)
        if self.expected <= self.highest_seen:  # arrived, not kept, not replayed
            self.report.gaps.append([self.expected, self.highest_seen])
            self.expected = self.highest_seen + 1
        return kept

    def _keep(self, seq: int, batch: Any, replayed: bool) -> None:
        from vllm.distributed.kv_events import AllBlocksCleared, BlockRemoved, BlockStored

        rep = self.report
        with self._lock:
            if rep.first_seq is None:
                rep.first_seq = seq
            rep.last_seq = seq
            rep.batches += 1
            if batch.data_parallel_rank is not None and batch.data_parallel_rank not in rep.data_parallel_ranks:
                rep.data_parallel_ranks.append(int(batch.data_parallel_rank))
            now = time.time()
            base = {"batch_seq": seq, "ts": float(batch.ts), "received_s": now, "replayed": replayed}
            for event in batch.events:
                if isinstance(event, BlockStored):
                    bs = int(event.block_size)
                    parent = as_uint64(event.parent_block_hash)
                    for i, h in enumerate(event.block_hashes):
                        h64 = as_uint64(h)
                        self._row(base, event="stored", block_hash=h64, parent_block_hash=parent,
                                  num_tokens=bs, block_size=bs,
                                  token_ids=[int(t) for t in event.token_ids[i * bs:(i + 1) * bs]],
                                  extra_keys=bool(event.extra_keys and event.extra_keys[i]),
                                  medium=event.medium)
                        parent = h64
                elif isinstance(event, BlockRemoved):
                    for h in event.block_hashes:
                        self._row(base, event="removed", block_hash=as_uint64(h), medium=event.medium)
                elif isinstance(event, AllBlocksCleared):
                    self._row(base, event="cleared")
                else:
                    raise TypeError(f"unknown KV event {type(event).__name__} in batch {seq}")
                rep.events += 1

    def _row(self, base: dict[str, Any], **values: Any) -> None:
        row = {name: None for name in CAPTURE_EVENT_SCHEMA.names}
        row.update(base, seq=self.report.rows, event_index=self.report.events, **values)
        self._rows.append(row)
        self.report.rows += 1

    # --- output ---------------------------------------------------------------

    def take_table(self) -> pa.Table:
        """The rows kept since the last call, as an Arrow table."""
        with self._lock:
            rows, self._rows = self._rows, []
        return pa.Table.from_pylist(rows, schema=CAPTURE_EVENT_SCHEMA)

    def close(self) -> None:
        self._sub.close(linger=0)
        self._ctx.term()


def capture(sub: KVEventSubscriber, out_dir: str | Path, stop: threading.Event,
            duration_s: float | None = None, idle_stop_s: float | None = None,
            client_log: str | Path | None = None, flush_rows: int = 65536) -> CaptureReport:
    """Receive until `stop` is set, `duration_s` has passed, or (with
    `idle_stop_s`) no message came for that long after the first one; then
    drain through replay and write the capture directory (events, the client
    log if it exists, the manifest last). Interrupted before the manifest is
    written, it leaves no output file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with atomic_path(out / EVENTS_FILE) as tmp:
        writer = pq.ParquetWriter(tmp, CAPTURE_EVENT_SCHEMA, compression="zstd")
        try:
            while not stop.is_set():
                sub.poll(100)
                now = time.time()
                if duration_s is not None and now - started >= duration_s:
                    sub.report.stopped_by = "duration"
                    break
                if idle_stop_s is not None and sub.last_message_s is not None \
                        and now - sub.last_message_s >= idle_stop_s:
                    sub.report.stopped_by = "idle"
                    break
                if sub.report.rows and len(sub._rows) >= flush_rows:
                    writer.write_table(sub.take_table())
            else:
                sub.report.stopped_by = sub.report.stopped_by or "signal"
            sub.drain()
            writer.write_table(sub.take_table())
        finally:
            writer.close()
    return finish_capture(sub, out, client_log)


def finish_capture(sub: KVEventSubscriber, out: Path, client_log: str | Path | None) -> CaptureReport:
    """Copy the client log in (atomically) and write the manifest."""
    sub.report.stopped_s = time.time()
    files = {"events": {"path": EVENTS_FILE, "sha256": sha256_file(out / EVENTS_FILE)}}
    if client_log is not None and Path(client_log).is_file():
        target = out / CLIENT_LOG_FILE
        if Path(client_log).resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(client_log, tmp)
        files["client_log"] = {"path": CLIENT_LOG_FILE, "sha256": sha256_file(target)}
    manifest = {"version": CAPTURE_VERSION, **asdict(sub.report), "complete": sub.report.complete,
                "files": files, "client_log_given": None if client_log is None else str(client_log)}
    write_json(manifest, out / MANIFEST_FILE)
    return sub.report
