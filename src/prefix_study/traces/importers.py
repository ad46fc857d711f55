"""Import external block-hash traces into the trace contract.

Formats (`kind`) are registered one per file in `traces/formats/` (name,
block size in tokens, parser of one JSON line); see `mooncake.py`, `bailian.py`.

Every hash id becomes one block access (`position` = its index), including a
trailing partial block: that is the traces' own block model, so `lookup` is
true for every row and `engine_hit` is null.

Prefix semantics need chained hashes (equal hash at position p <=> equal
prefix up to p). The external ids are per-block ids that need not be chained,
so `block_hash` is a 64-bit chain over them: h_p = mix(h_{p-1}, id_p). Equal id
sequences give equal hashes, and an id reused under a different prefix gets a
different hash, which is what a prefix (KV) cache can actually share. On
Mooncake's conversation trace the ids already behave as chained (every id
occurs at one position with one prefix), so chaining changes no equality.

Files may be plain, gzip- or zstd-compressed JSONL (public traces ship as
`.jsonl.zst`), told apart by their first bytes, not their names. A malformed
line (bad JSON, a field out of range, bytes that are not UTF-8, a number too
large for a float) raises `TraceFormatError` naming the file and line number,
or, with skip_bad_lines, is skipped and counted in the report.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import polars as pl

from prefix_study.traces.formats import ExternalRequest, TraceFormatError, get_trace_format
from prefix_study.traces.block_ids import trace_frame, with_block_ids
from prefix_study.traces.schema import TRACE_SCHEMA  # noqa: F401  (re-exported)

_REPORTED_BAD_LINES = 20


#: First bytes of the compressed files the importer reads: name -> magic.
COMPRESSION_MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}


def compression_of(path: Path | str) -> str | None:
    """"gzip", "zstd" or None (plain), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return next((name for name, magic in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


@contextlib.contextmanager
def open_trace(path: Path | str) -> Iterator[BinaryIO]:
    """The file's decompressed bytes (plain, gzip or zstd), as a binary stream."""
    kind = compression_of(path)
    with open(path, "rb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=raw) as f:
                yield f
        elif kind == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
                yield io.BufferedReader(reader)
        else:
            yield raw


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of the decompressed file; a corrupt or truncated
    gzip/zstd stream raises TraceFormatError naming the file and the line."""
    lineno = 0
    try:
        with open_trace(path) as f:
            for lineno, raw in enumerate(f, start=1):
                yield lineno, raw
    except TraceFormatError:
        raise
    except (OSError, EOFError) as e:
        raise TraceFormatError(f"{path}: cannot be read after line {lineno}: {e}") from e
    except Exception as e:  # zstandard.ZstdError
        if type(e).__module__.startswith("zstandard"):
            raise TraceFormatError(f"{path}: cannot be decompressed after line {lineno}: {e}") from e
        raise


def _decode(raw: bytes) -> str:
    """A line as text; bytes that are not UTF-8 raise ValueError saying where."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1} ({e.reason})") from None


# splitmix64 constants
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Chain seed (the "parent" of position 0).
CHAIN_SEED = np.uint64(0x5052454649585354)  # "PREFIXST"


def _mix(parent: np.ndarray, value: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of (parent, value): a 64-bit chained hash step."""
    z = parent * _M2 + value * _GOLDEN + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def chain_block_ids(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Chained uint64 hashes of per-block ids.

    values: the id of each block; positions: its index in its request
    (0..n-1, requests contiguous). Vectorised over requests, one step per
    position.
    """
    values = values.astype(np.uint64, copy=False)
    positions = positions.astype(np.int64, copy=False)
    out = np.empty(values.shape[0], dtype=np.uint64)
    if values.shape[0] == 0:
        return out
    order = np.argsort(positions, kind="stable")
    counts = np.bincount(positions)
    start = 0
    with np.errstate(over="ignore"):
        for p, count in enumerate(counts):
            rows = order[start:start + count]
            start += count
            parent = np.full(count, CHAIN_SEED, dtype=np.uint64) if p == 0 else out[rows - 1]
            out[rows] = _mix(parent, values[rows])
    return out


def read_external_requests(
    kind: str, path: Path | str, workload: str, max_requests: int | None = None,
    skip_bad_lines: bool = False,
) -> tuple[list[ExternalRequest], dict[str, Any]]:
    """Parse a JSONL trace into requests; report lines read, skipped, why.

    A file without any request (empty, blank lines only, every line skipped)
    raises TraceFormatError: a replay of nothing would report a 0.0 hit rate.
    """
    fmt = get_trace_format(kind)
    if fmt.parse is None:
        if fmt.requests is None:
            raise ValueError(f"trace format {kind!r} is not one request per line; use import_trace")
        return fmt.requests(Path(path), workload, max_requests, skip_bad_lines)
    if max_requests is not None and max_requests <= 0:
        raise ValueError(f"max_requests={max_requests}: must be a positive integer (or None: all)")
    parse = fmt.parse
    path = Path(path)
    requests: list[ExternalRequest] = []
    bad: list[dict[str, Any]] = []
    num_bad = 0
    blank = 0
    lines = 0
    for lineno, raw in _numbered_lines(path):
        if max_requests is not None and len(requests) >= max_requests:
            break
        lines = lineno
        if not raw.strip():
            blank += 1
            continue
        try:
            rec = json.loads(_decode(raw))
            if not isinstance(rec, dict):
                raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
            requests.append(parse(rec, len(requests), workload))
        except (ValueError, OverflowError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if not skip_bad_lines:
                raise TraceFormatError(f"{path}:{lineno}: {e}") from e
            num_bad += 1
            if len(bad) < _REPORTED_BAD_LINES:
                bad.append({"line": lineno, "error": str(e)})
    if not requests:
        what = (f"{lines} lines, {blank} blank, {num_bad} skipped as malformed" if lines
                else "the file is empty")
        raise TraceFormatError(f"{path}: no {kind} requests in the trace ({what})")
    report = {
        "kind": kind,
        "path": str(path),
        "workload": workload,
        "block_tokens": fmt.block_tokens,
        "lines_read": lines,
        "blank_lines": blank,
        "skipped_lines": num_bad,
        "skipped": bad,
        "requests": len(requests),
        "max_requests": max_requests,
    }
    return requests, report


def requests_to_trace(requests: list[ExternalRequest], workload: str) -> tuple[pl.DataFrame, bool]:
    """Block rows in timestamp order (stable: file order breaks ties);
    returns the frame and whether the file was already in timestamp order."""
    times = np.array([r.time_s for r in requests], dtype=np.float64)
    in_order = bool(np.all(times[1:] >= times[:-1])) if len(requests) > 1 else True
    order = np.argsort(times, kind="stable") if not in_order else np.arange(len(requests))
    lengths = np.array([len(requests[i].hash_ids) for i in order], dtype=np.int64)
    total = int(lengths.sum())
    values = np.fromiter(
        (h for i in order for h in requests[i].hash_ids), dtype=np.uint64, count=total
    )
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(total, dtype=np.int64) - starts
    request_ids = pl.DataFrame(
        {"request_id": [requests[i].request_id for i in order], "n": lengths},
        schema={"request_id": pl.String, "n": pl.Int64},
    ).select(pl.col("request_id").repeat_by("n").explode())["request_id"]
    frame = trace_frame(
        {
            "request_id": request_ids if total else pl.Series([], dtype=pl.String),
            "workload": pl.Series([workload] * total, dtype=pl.String),
            "time_s": np.repeat(times[order], lengths),
            "position": positions.astype(np.int32),
            "block_hash": chain_block_ids(values, positions),
            "engine_hit": pl.Series([None] * total, dtype=pl.Boolean),
            "lookup": np.ones(total, dtype=np.bool_),
        },
    )
    return frame, in_order


def import_trace(
    kind: str, path: Path | str, workload_name: str, max_requests: int | None = None,
    skip_bad_lines: bool = False, block_tokens: int | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Read an external JSONL trace as a block trace (trace contract schema).

    Returns the frame and a report: lines read, skipped lines (with the first
    line numbers and reasons), requests, blocks, distinct blocks, whether the
    file was in timestamp order. A format with its own reader (a KV-event
    capture, `formats/vllm_kv_events.py`) builds the trace itself.
    """
    fmt = get_trace_format(kind)
    if fmt.read is not None:
        frame, report = fmt.read(Path(path), workload_name, max_requests, skip_bad_lines, block_tokens)
        return (frame if "block_id" in frame.columns else with_block_ids(frame)), report
    requests, report = read_external_requests(kind, path, workload_name, max_requests, skip_bad_lines)
    frame, in_order = requests_to_trace(requests, workload_name)
    if frame.height == 0:
        raise TraceFormatError(f"{path}: {len(requests)} requests but no block (every hash_ids is empty)")
    report["blocks"] = frame.height
    report["distinct_blocks"] = frame["block_hash"].n_unique() if frame.height else 0
    report["sorted_by_timestamp"] = not in_order
    return frame, report
