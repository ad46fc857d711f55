"""Workloads: the ShareGPT client simulator and four request-stream families.

`sharegpt` streams the dataset, `builders` turns conversations into per-turn
scripts (chat_single, chat_multi, qa, summarization; see its docstring for how
and why), `client` times them (Poisson conversations, closed-loop turns with
think times, via `arrivals`), and `request_stream` writes the
`workloads/{workload}.parquet` contract. `build_workload_file` is the rule's
entry point.
"""

from prefix_study.workloads.builders import WorkloadError
from prefix_study.workloads.client import ConversationScript, RequestEvent, ScriptedTurn
from prefix_study.workloads.request_stream import (
    REQUEST_STREAM_SCHEMA,
    build_scripts,
    build_workload_events,
    build_workload_file,
    build_workload_table,
    workload_summary,
)
from prefix_study.workloads.sharegpt import (
    Conversation,
    LoadReport,
    ShareGPTData,
    ShareGPTError,
    load_sharegpt,
    read_sharegpt,
)

__all__ = [
    "REQUEST_STREAM_SCHEMA",
    "Conversation",
    "ConversationScript",
    "LoadReport",
    "RequestEvent",
    "ScriptedTurn",
    "ShareGPTData",
    "ShareGPTError",
    "WorkloadError",
    "build_scripts",
    "build_workload_events",
    "build_workload_file",
    "build_workload_table",
    "load_sharegpt",
    "read_sharegpt",
    "workload_summary",
]
