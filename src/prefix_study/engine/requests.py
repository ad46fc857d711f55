"""Checks on a request stream before it reaches the engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

REQUIRED_COLUMNS = (
    "request_id", "workload", "conversation_id", "turn_index", "arrival_s",
    "prompt_token_ids", "scripted_output_token_ids",
)


class RequestStreamError(ValueError):
    """The request stream cannot be run; the message names the problem."""


@dataclass
class StreamCheck:
    """Requests to run, and those skipped (with the reason) by config."""

    frame: pl.DataFrame
    skipped: list[dict] = field(default_factory=list)


def output_budget(mode: str, prompt_len: int, script_len: int, model_tokens: int = 16) -> int:
    if mode == "echo":
        return prompt_len
    if mode == "script":
        return script_len
    return model_tokens


def check_request_stream(frame: pl.DataFrame, max_model_len: int, mode: str,
                         skip_too_long: bool = False) -> StreamCheck:
    """Reject a bad stream with a clear message, before the engine starts.

    Missing columns, duplicate ids, empty prompts and (in script mode) empty
    scripts always fail. A request whose prompt plus output does not fit in
    `max_model_len` fails the run naming its id, or with `skip_too_long` is
    skipped together with the later turns of its conversation.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise RequestStreamError(f"request stream lacks columns {missing}; has {frame.columns}")
    if "think_time_s" not in frame.columns:
        frame = frame.with_columns(pl.lit(0.0).alias("think_time_s"))
    dup = frame.filter(pl.col("request_id").is_duplicated())["request_id"].unique().to_list()
    if dup:
        raise RequestStreamError(f"duplicate request_id values: {dup[:5]}")
    frame = frame.with_columns(
        pl.col("prompt_token_ids").list.len().alias("_prompt_len"),
        pl.col("scripted_output_token_ids").list.len().alias("_script_len"),
    )
    empty = frame.filter(pl.col("_prompt_len") == 0)["request_id"].to_list()
    if empty:
        raise RequestStreamError(f"empty prompt in requests {empty[:5]}")
    if mode == "script":
        no_script = frame.filter(pl.col("_script_len") == 0)["request_id"].to_list()
        if no_script:
            raise RequestStreamError(f"empty scripted output (script mode) in requests {no_script[:5]}")
    budget = [output_budget(mode, p, s) for p, s in zip(frame["_prompt_len"], frame["_script_len"])]
    frame = frame.with_columns(pl.Series("_total_len", budget, dtype=pl.Int64) + pl.col("_prompt_len"))
    too_long = frame.filter(pl.col("_total_len") > max_model_len)
    skipped: list[dict] = []
    if too_long.height:
        first = too_long.row(0, named=True)
        if not skip_too_long:
            raise RequestStreamError(
                f"request {first['request_id']} needs {first['_total_len']} tokens "
                f"(prompt {first['_prompt_len']} + output) > engine.max_model_len={max_model_len}; "
                f"{too_long.height} request(s) too long. Set engine.skip_too_long=true to skip them")
        # A skipped turn also drops the later turns of its conversation.
        cut = too_long.group_by("conversation_id").agg(pl.col("turn_index").min().alias("_cut"))
        frame = frame.join(cut, on="conversation_id", how="left")
        dropped = frame.filter(pl.col("_cut").is_not_null() & (pl.col("turn_index") >= pl.col("_cut")))
        skipped = [
            {"request_id": r["request_id"],
             "reason": "too_long" if r["_total_len"] > max_model_len else "earlier_turn_skipped",
             "total_tokens": r["_total_len"]}
            for r in dropped.iter_rows(named=True)
        ]
        frame = frame.filter(pl.col("_cut").is_null() | (pl.col("turn_index") < pl.col("_cut"))).drop("_cut")
    return StreamCheck(frame=frame.drop("_prompt_len", "_script_len", "_total_len"), skipped=skipped)
