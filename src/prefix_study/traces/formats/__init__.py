"""External block-hash trace formats: one module per format, each registered here.

A format is a name (the workload `kind`), its block size in tokens and a
parser from one JSON object (one line of a JSONL file) to an
`ExternalRequest`. Adding a format is one file in this package that calls
`register_trace_format`, plus one YAML file in `conf/workload/`
(`defaults: [<name>_schema]`); the schema's workload kinds, the importer and
the pipeline's block sizes all read this registry.

Only the standard library is imported here. The config schema lists the
names from the format files without importing them (`prefix_study.registry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from prefix_study.registry import TRACE_FORMAT_REGISTRY

__all__ = [
    "ExternalRequest", "TraceFormat", "TraceFormatError", "external_block_tokens", "get_trace_format", "hash_ids_field", "int_field",
    "number_field", "register_trace_format", "trace_format_names", "trace_formats",
]


class TraceFormatError(ValueError):
    """A line of an external trace does not match its format, or the file holds no request."""


@dataclass(frozen=True)
class ExternalRequest:
    request_id: str
    time_s: float
    input_length: int
    output_length: int
    hash_ids: list[int]


#: parse(record, index of the request in the file, workload name) -> request;
#: raises ValueError with the reason for a malformed record.
Parser = Callable[[dict, int, str], ExternalRequest]


#: read(path, workload, max_requests, skip_bad_lines, block_tokens) -> (trace
#: frame with the contract's columns, report): a format whose input is not one
#: request per JSON line (a KV-event capture) builds the trace itself;
#: block_tokens: the configured block size (None: the format's), to check.
Reader = Callable[[Any, str, Any, bool, Any], tuple[Any, dict]]


@dataclass(frozen=True)
class TraceFormat:
    name: str
    block_tokens: int
    parse: Parser | None
    description: str = ""
    read: Reader | None = None
    #: requests(path, workload, max_requests, skip_bad_lines) -> (requests, report):
    #: a reader format's requests with their token counts (the cluster stage's queue).
    requests: Callable[[Any, str, Any, bool], tuple[list[ExternalRequest], dict]] | None = None


_FORMATS: dict[str, TraceFormat] = {}


def register_trace_format(name: str, block_tokens: int, description: str = "", whole_input: bool = False,
                          requests: Any = None) -> Callable[[Any], Any]:
    """Decorator: register `parse` as the parser of format `name`; with
    `whole_input`, the decorated function is the format's `read` (a
    whole-input reader, see `Reader`) and `requests` its requests with token
    counts (TraceFormat)."""

    def wrap(fn: Any) -> Any:
        if name in _FORMATS:
            raise ValueError(f"trace format {name!r} registered twice")
        if block_tokens <= 0:
            raise ValueError(f"trace format {name!r}: block_tokens must be positive")
        _FORMATS[name] = TraceFormat(name, int(block_tokens), None if whole_input else fn, description,
                                     fn if whole_input else None, requests)
        return fn

    return wrap


def trace_formats() -> dict[str, TraceFormat]:
    """Every format, in file order (imports every format module)."""
    TRACE_FORMAT_REGISTRY.load_all()
    return {name: _FORMATS[name] for name in TRACE_FORMAT_REGISTRY.names()}


def trace_format_names() -> tuple[str, ...]:
    """Format names, in file order, read from the format files without importing them."""
    return tuple(TRACE_FORMAT_REGISTRY.names())


def get_trace_format(name: str) -> TraceFormat:
    """The format `name`, importing its module on first use."""
    if name not in trace_format_names():
        raise ValueError(f"kind={name!r} is not an external trace format: allowed {list(trace_format_names())}")
    if name not in _FORMATS:
        TRACE_FORMAT_REGISTRY.load(name)
    return _FORMATS[name]


def external_block_tokens(workload_cfg: Any) -> int:
    """Tokens per block of an external trace workload: its `block_tokens`
    when set, else its format's."""
    own = getattr(workload_cfg, "block_tokens", None)
    return int(own) if own is not None else get_trace_format(str(workload_cfg.kind)).block_tokens


# --- field checks shared by the parsers --------------------------------------------


def int_field(rec: dict, key: str, minimum: int = 0) -> int:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"field {key!r} must be an integer, got {v!r}")
    if v < minimum:
        raise ValueError(f"field {key!r} must be >= {minimum}, got {v}")
    return v


def number_field(rec: dict, key: str) -> float:
    """A finite, non-negative number (JSON's NaN and Infinity are refused)."""
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"field {key!r} must be a finite non-negative number, got {v!r}")
    try:
        value = float(v)
    except OverflowError:  # an integer beyond float's range
        raise ValueError(f"field {key!r} must be a finite non-negative number, got a {len(str(abs(v)))}-digit "
                         "integer (too large for a float)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"field {key!r} must be a finite non-negative number, got {v!r}")
    return value


def hash_ids_field(rec: dict, key: str = "hash_ids") -> list[int]:
    ids: Any = rec.get(key)
    if not isinstance(ids, list):
        raise ValueError(f"field {key!r} must be a list, got {type(ids).__name__}")
    for h in ids:
        if isinstance(h, bool) or not isinstance(h, int) or h < 0 or h >= 1 << 64:
            raise ValueError(f"{key!r} must hold non-negative 64-bit integers, got {h!r}")
    return ids
