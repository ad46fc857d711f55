"""Milestone 1 and prefix sanity checks through the real CPU vLLM engine."""

from __future__ import annotations

import pytest

from prefix_study.assets.tokenizer import decode, encode
from prefix_study.engine import generate

pytestmark = pytest.mark.engine


def test_echo_hello_world(engine_factory):
    engine = engine_factory(32)
    prompt = encode("Hello world")
    out = generate(engine, [prompt], "echo")[0]
    assert list(out.outputs[0].token_ids) == prompt
    assert out.outputs[0].text == "Hello world"
    assert decode(out.outputs[0].token_ids) == "Hello world"


def test_echo_long_prompt_batch(engine_factory):
    engine = engine_factory(64)
    prompts = [encode("The quick brown fox jumps over the lazy dog. " * 5), encode("Hello world")]
    outs = generate(engine, prompts, "echo")
    assert [list(o.outputs[0].token_ids) for o in outs] == prompts


def _shared_prefix_prompts(n_shared: int) -> tuple[list[int], list[int]]:
    shared = [(7 * i + 11) % 50000 for i in range(n_shared)]
    first = shared + [40000 + i for i in range(37)]
    second = shared + [45000 + i for i in range(41)]
    return first, second


@pytest.mark.parametrize("block_size", [32, 64])
@pytest.mark.parametrize("n_shared", [100, 128, 250])
def test_shared_prefix_is_served_from_cache(engine_factory, block_size, n_shared):
    engine = engine_factory(block_size)
    first, second = _shared_prefix_prompts(n_shared)
    out1 = generate(engine, [first], "script", [[1, 2, 3]])[0]
    out2 = generate(engine, [second], "script", [[4, 5]])[0]
    assert out1.num_cached_tokens == 0
    assert out2.num_cached_tokens == (n_shared // block_size) * block_size


@pytest.mark.parametrize("block_size", [32, 64])
def test_no_prefix_caching_reports_zero(engine_factory, block_size):
    engine = engine_factory(block_size, prefix_caching=False)
    first, second = _shared_prefix_prompts(200)
    generate(engine, [first], "script", [[1]])
    out2 = generate(engine, [second], "script", [[2]])[0]
    assert out2.num_cached_tokens == 0


@pytest.mark.parametrize("block_size", [32, 64])
def test_script_reply_is_reused_by_the_next_turn(engine_factory, block_size):
    """Multi-turn chat: turn 2's prompt = turn 1's prompt + scripted reply + more."""
    engine = engine_factory(block_size)
    prompt = encode("User: explain prefix caching in one paragraph, please.\n\nAssistant:") * 3
    reply = [(13 * i + 101) % 50000 for i in range(100)]
    out1 = generate(engine, [prompt], "script", [reply])[0]
    assert list(out1.outputs[0].token_ids) == reply
    follow_up = prompt + reply + encode("\n\nUser: and eviction?\n\nAssistant:")
    out2 = generate(engine, [follow_up], "script", [[5, 6, 7]])[0]
    # KV exists for every token fed to the model: the prompt and all but the
    # last reply token.
    computed = len(prompt) + len(reply) - 1
    assert out2.num_cached_tokens == (computed // block_size) * block_size
    assert out2.num_cached_tokens > len(prompt)


def test_script_mode_forces_exact_tokens_including_eos(engine_factory):
    engine = engine_factory(32)
    script = [50256, 15496, 50256, 995]  # EOS inside the reply must not stop it
    out = generate(engine, [encode("Say it")], "script", [script])[0]
    assert list(out.outputs[0].token_ids) == script


def test_model_mode_is_not_forced(engine_factory):
    engine = engine_factory(32)
    out = generate(engine, [encode("Hello world")], "model")[0]
    assert len(out.outputs[0].token_ids) == 16
