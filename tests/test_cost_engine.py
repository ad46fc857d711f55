"""engine.clock=cost_model: vLLM's real scheduler, steps timed by the cost model."""

from __future__ import annotations

import polars as pl
import pytest

from prefix_study.config.compose import compose_config
from prefix_study.cost import CostModel
from prefix_study.engine import ClockModel, check_request_stream, drive
from prefix_study.engine.latency import with_latency_columns

pytestmark = pytest.mark.engine


def two_turn_stream() -> pl.DataFrame:
    """One conversation: turn 1 alone at t=0, turn 2 (turn 1 + reply + more) after it."""
    first = [(7 * i) % 50000 + 1 for i in range(300)]
    reply = [(11 * i) % 50000 + 3 for i in range(12)]
    second = first + reply + [(13 * i) % 50000 + 5 for i in range(90)]
    rows = [
        {"request_id": "c0-t0", "workload": "w", "conversation_id": "c0", "turn_index": 0, "arrival_s": 0.0,
         "think_time_s": 0.0, "prompt_token_ids": first, "scripted_output_token_ids": reply},
        {"request_id": "c0-t1", "workload": "w", "conversation_id": "c0", "turn_index": 1, "arrival_s": 0.0,
         "think_time_s": 0.5, "prompt_token_ids": second, "scripted_output_token_ids": reply[:5]},
    ]
    return pl.DataFrame(rows, schema_overrides={"turn_index": pl.Int32, "prompt_token_ids": pl.List(pl.Int32),
                                                "scripted_output_token_ids": pl.List(pl.Int32)})


@pytest.fixture(scope="module")
def cost_model() -> CostModel:
    return CostModel.from_config(compose_config(["model=llama3_8b", "hardware=h100_sxm"]))


def _run(engine_factory, cost_model, prefix_caching: bool) -> pl.DataFrame:
    engine = engine_factory(32, prefix_caching=prefix_caching, capacity_blocks=2048)
    stream = check_request_stream(two_turn_stream(), 2048, "script").frame
    res = drive(engine, stream, mode="script", clock=ClockModel("cost_model", cost=cost_model), progress=False)
    return with_latency_columns(res.requests).sort("turn_index")


def test_cost_model_clock_times_steps_by_the_cost_model(engine_factory, cost_model):
    r = _run(engine_factory, cost_model, prefix_caching=True).to_dicts()
    t0, t1 = r
    p0, p1 = len(t0["prompt_token_ids"]), len(t1["prompt_token_ids"])
    assert t0["num_cached_tokens"] == 0 and t1["num_cached_tokens"] >= 288  # 9 full blocks of turn 1
    # Each turn runs alone: its prefill is one step, so TTFT is the cost model's.
    assert t0["ttft_s"] == pytest.approx(cost_model.ttft_s(p0, 0), rel=1e-9)
    assert t1["ttft_s"] == pytest.approx(cost_model.ttft_s(p1, t1["num_cached_tokens"]), rel=1e-9)
    assert t0["queue_s"] == 0.0
    # Decode steps of a lone request: context grows by one token per step.
    k = len(t0["output_token_ids"])
    decode = sum(cost_model.step_time_s([], [p0 + i]) for i in range(1, k))
    assert t0["finished_s"] - t0["first_token_s"] == pytest.approx(decode, rel=1e-9)
    assert t0["tpot_s"] == pytest.approx(decode / (k - 1), rel=1e-9)


def test_prefix_caching_cuts_ttft_under_the_cost_model_clock(engine_factory, cost_model):
    on = _run(engine_factory, cost_model, prefix_caching=True)
    off = _run(engine_factory, cost_model, prefix_caching=False)
    assert off["num_cached_tokens"].to_list() == [0, 0]
    p1 = len(off["prompt_token_ids"][1])
    assert off["ttft_s"][1] == pytest.approx(cost_model.ttft_s(p1, 0), rel=1e-9)
    assert on["ttft_s"][1] < off["ttft_s"][1]
    assert on["ttft_s"][0] == pytest.approx(off["ttft_s"][0], rel=1e-9)


def test_cost_model_clock_is_deterministic(engine_factory, cost_model):
    a = _run(engine_factory, cost_model, prefix_caching=True)
    b = _run(engine_factory, cost_model, prefix_caching=True)
    assert a.equals(b)
