"""Block-access traces encoded for the replay kernels.

The kernels never see 64-bit hashes: they index flat arrays by the trace's
`block_id` column (dense int32 ids 0..k-1 in order of first use, written
once per trace file by the traces stage: traces/block_ids.py). Request
boundaries and the trace's `lookup` and `partial_tail` columns travel as
per-access flag bits, set by one numba pass (`_encode_flags`), so everything
a replay does after reading the file runs at kernel speed. The workload and
turn of each access (string columns) are encoded only for the policies and
tables that use them, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, jit
from prefix_study.traces.block_ids import dense_block_ids

#: Next-use value for an access that is the last use of its block.
NEVER = np.iinfo(np.int64).max

#: Turn indices at or above this share one category (multi-turn chat): the
#: reuse pattern of turn 7 and turn 30 is alike, and few blocks reach them.
MAX_TURN_CATEGORY = 7

#: A request id `<workload>-<conversation>-<turn>` (workloads/client.py)
#: carries its turn index; any other id (external traces, synthetic traces)
#: is turn 0.
_TURN_PATTERN = r"-\d+-(\d+)$"


@dataclass
class BlockTrace:
    """One trace, ready for the kernels.

    ids: dense block id per access (int32, `num_ids` of them); flags:
    REQUEST_START / NOT_LOOKED_UP / PARTIAL_TAIL bits (uint8, defined in
    kernels/_common.py). workload: index into `workload_names` per access
    (int16), encoded on first use from `workload_column` (the frame's
    `workload` strings) unless given as `workload_codes`.

    Context for policies that need more than the id stream (registered with
    `needs_context`): position: the block's index in its request (int32);
    turn: the request's turn index in its conversation (int16, capped at
    MAX_TURN_CATEGORY). Both default to what the flags imply (position from
    the request starts, turn 0) for traces built without them.
    """

    ids: np.ndarray
    flags: np.ndarray
    num_ids: int
    workload_column: pl.Series | None = None
    workload_codes: tuple[np.ndarray, tuple[str, ...]] | None = None
    position: np.ndarray | None = None
    turn: np.ndarray | None = None
    _next_use: np.ndarray | None = field(default=None, repr=False)
    # Request id per access, kept (not copied) to derive `turn` on first use.
    _request_id: pl.Series | None = field(default=None, repr=False)

    @property
    def accesses(self) -> int:
        return int(self.ids.shape[0])

    @property
    def workload(self) -> np.ndarray:
        """Workload code per access (int16), an index into `workload_names`."""
        return self._workloads()[0]

    @property
    def workload_names(self) -> tuple[str, ...]:
        """Workload names in order of first appearance."""
        return self._workloads()[1]

    def _workloads(self) -> tuple[np.ndarray, tuple[str, ...]]:
        if self.workload_codes is None:
            self.workload_codes = workload_codes(self.workload_column, self.accesses)
        return self.workload_codes

    @property
    def looked_up(self) -> np.ndarray:
        """Accesses that count towards accesses and hits."""
        return (self.flags & NOT_LOOKED_UP) == 0

    @property
    def num_lookups(self) -> int:
        return int(np.count_nonzero(self.looked_up))

    @property
    def num_requests(self) -> int:
        return int(np.count_nonzero(self.flags & REQUEST_START))

    @property
    def next_use(self) -> np.ndarray:
        """Index of the next access of the same block (NEVER if none), for Belady."""
        if self._next_use is None:
            self._next_use = next_use_positions(self.ids)
        return self._next_use

    @property
    def positions(self) -> np.ndarray:
        """Block index within its request (int32)."""
        if self.position is None:
            self.position = positions_from_flags(self.flags)
        return self.position

    @property
    def turns(self) -> np.ndarray:
        """Turn index of the access's request (int16; 0 when unknown)."""
        if self.turn is None:
            if self._request_id is not None:
                self.turn = turn_indices(self._request_id, (self.flags & REQUEST_START) != 0)
            else:
                self.turn = np.zeros(self.accesses, dtype=np.int16)
        return self.turn

    def categories(self) -> tuple[np.ndarray, int]:
        """Category per access (int32) and the number of categories: workload
        x turn index (capped), the grouping of the ATC'25 workload-aware policy."""
        per_workload = MAX_TURN_CATEGORY + 1
        cat = self.workload.astype(np.int32) * per_workload + np.minimum(self.turns, MAX_TURN_CATEGORY)
        return cat.astype(np.int32), max(1, len(self.workload_names)) * per_workload

    def select(self, keep: np.ndarray) -> "BlockTrace":
        """The sub-trace of accesses where `keep` is True (whole requests only)."""
        # Re-densify so arrays stay as small as the sub-trace's working set.
        ids, num_ids = dense_block_ids(self.ids[keep].astype(np.uint64))
        return BlockTrace(
            ids=ids,
            flags=self.flags[keep],
            num_ids=num_ids,
            workload_codes=(self.workload[keep], self.workload_names),
            position=None if self.position is None else self.position[keep],
            turn=self.turns[keep],
        )


def workload_codes(workload: pl.Series | None, accesses: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Code per access (int16) and names, in order of first appearance."""
    if workload is None:
        return np.zeros(accesses, dtype=np.int16), ()
    names = workload.unique(maintain_order=True).to_list()
    codes = workload.replace_strict(names, list(range(len(names))), return_dtype=pl.Int16).to_numpy()
    return codes, tuple(names)


@jit
def positions_from_flags(flags):
    """Index of each access within its request (counted from REQUEST_START)."""
    out = np.empty(flags.shape[0], dtype=np.int32)
    p = 0
    for i in range(flags.shape[0]):
        if flags[i] & 1:  # REQUEST_START
            p = 0
        out[i] = p
        p += 1
    return out


def turn_indices(request_id: pl.Series, starts: np.ndarray) -> np.ndarray:
    """Turn index per access from the request ids (int16, capped)."""
    first = np.flatnonzero(starts)
    turn_per_request = (
        request_id.gather(first).str.extract(_TURN_PATTERN, 1)
        .cast(pl.Int64, strict=False).fill_null(0).clip(0, MAX_TURN_CATEGORY).to_numpy()
    )
    lengths = np.diff(np.append(first, request_id.len()))
    return np.repeat(turn_per_request, lengths).astype(np.int16)


def next_use_positions(ids: np.ndarray) -> np.ndarray:
    """For each access, the index of the next access to the same id (NEVER if none)."""
    n = ids.shape[0]
    out = np.full(n, NEVER, dtype=np.int64)
    if n < 2:
        return out
    order = np.argsort(ids, kind="stable")
    same = ids[order[1:]] == ids[order[:-1]]
    out[order[:-1][same]] = order[1:][same]
    return out


@jit
def _encode_flags(ids, position, lookup, partial_tail):
    """Flag bits per access, the number of ids (max + 1) and the smallest id.

    A request starts where the position does not grow: the first row, and
    position 0 after a request's rows (a trace's requests are contiguous, with
    positions 0, 1, 2, ...). lookup / partial_tail: empty when absent.
    Branch-free on the rows, so it runs at kernel speed."""
    n = ids.shape[0]
    flags = np.empty(n, dtype=np.uint8)
    has_lookup = lookup.shape[0] > 0
    has_partial = partial_tail.shape[0] > 0
    hi = np.int32(-1)
    lo = np.int32(0)
    prev = np.int32(np.iinfo(np.int32).max)
    for i in range(n):
        x = ids[i]
        hi = max(hi, x)
        lo = min(lo, x)
        p = position[i]
        start = p <= prev
        prev = p
        f = np.uint8(start) * np.uint8(REQUEST_START)
        if has_partial:
            f |= np.uint8(start & partial_tail[i]) * np.uint8(PARTIAL_TAIL)
        if has_lookup:
            f |= np.uint8(not lookup[i]) * np.uint8(NOT_LOOKED_UP)
        flags[i] = f
    return flags, hi + 1, lo


_ABSENT = np.zeros(0, dtype=np.bool_)


def bool_array(column: pl.Series, null: bool) -> np.ndarray:
    """A Boolean column as a numpy bool array, nulls read as `null`. Unpacked
    from its Arrow bitmaps: about 1 ms per 5M rows, where polars' `to_numpy`
    takes about 30 (a third of a whole replay's budget at 50 M accesses/s)."""
    arrow = column.to_arrow()
    if hasattr(arrow, "combine_chunks"):  # a ChunkedArray
        arrow = arrow.combine_chunks()
    n, offset = len(arrow), arrow.offset
    validity, values = arrow.buffers()[:2]

    def unpack(buffer) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
        return bits[offset:offset + n].view(np.bool_)

    out = unpack(values) if n else np.zeros(0, dtype=np.bool_)
    if validity is not None and arrow.null_count:
        valid = unpack(validity)
        out = (out | ~valid) if null else (out & valid)
    return out


def request_start_mask(frame: pl.DataFrame) -> np.ndarray:
    """True where a new request begins (`_encode_flags`)."""
    return (encode_trace(frame).flags & REQUEST_START) != 0


def encode_trace(frame: pl.DataFrame) -> BlockTrace:
    """Encode a trace frame (trace contract columns, in access order; at least
    `block_id`, `position`, `workload`, `request_id`)."""
    if "block_id" not in frame.columns:
        raise ValueError("trace frame without a `block_id` column (the trace contract, traces/schema.py): "
                         "build it with traces.block_ids.trace_frame or with_block_ids")
    # A writable copy (polars hands out read-only views): the kernels are
    # compiled for writable arrays, and a copy costs a few ms per 5M rows.
    ids = frame["block_id"].to_numpy(writable=True)
    if ids.dtype != np.int32:
        raise ValueError(f"trace column block_id must be int32 without nulls, got {ids.dtype}")
    position = frame["position"].to_numpy().astype(np.int32, copy=False)
    lookup = bool_array(frame["lookup"], null=True) if "lookup" in frame.columns else _ABSENT
    partial = bool_array(frame["partial_tail"], null=False) if "partial_tail" in frame.columns else _ABSENT
    flags, num_ids, smallest = _encode_flags(ids, position, lookup, partial)
    if smallest < 0:
        bad = int(np.flatnonzero(ids < 0)[0])
        raise ValueError(f"trace row {bad}: block_id {ids[bad]} is negative")
    return BlockTrace(
        ids=ids,
        flags=flags,
        num_ids=int(num_ids),
        workload_column=frame["workload"],
        position=position,
        _request_id=frame["request_id"],
    )


REPLAY_COLUMNS = ("request_id", "workload", "position", "block_hash", "block_id", "lookup", "partial_tail")


def read_trace(path: Path | str, columns: tuple[str, ...] = REPLAY_COLUMNS) -> pl.DataFrame:
    """Read the columns of a trace Parquet file that the replays need
    (optional columns such as `lookup` are skipped when absent)."""
    present = pl.read_parquet_schema(path)
    return pl.read_parquet(path, columns=[c for c in columns if c in present])
def load_block_trace(path: Path | str) -> BlockTrace:
    """Read and encode one trace file."""
    return encode_trace(read_trace(path))
