"""The four ShareGPT workload families, as conversation scripts.

Each builder walks the loaded conversations in a seeded random order and takes
what it needs, so the same config and seed always pick the same data.

chat_single
    The first user message of each conversation, one request each. Sharing
    comes only from users who happen to type the same opening.

chat_multi
    Every turn, up to `max_turns`. Turn k's prompt ids are exactly turn k-1's
    prompt ids + turn k-1's scripted reply ids + the new `User: ...
    Assistant:` segment ids (concatenated, never re-tokenized). The scripted
    reply is the dataset's assistant message cut to `max_reply_tokens`, and the
    next turn carries that cut reply, so the engine serves turn k from the KV
    blocks turn k-1's prompt and reply wrote. A conversation stops before the
    turn whose prompt would exceed `max_prompt_tokens`.

qa
    Short questions behind a shared context, the case prefix caching is built
    for (a system prompt with few-shot examples in front of every user query).
    Each of `num_contexts` contexts is a long instruction (numbered in its
    first tokens, so no two contexts share a block) followed by few-shot exemplars (first user message + first
    reply of ShareGPT conversations whose question is short) and cut to exactly
    `context_tokens` tokens. Every request is one context (picked by a seeded
    RNG) followed by a new short question: a ShareGPT first user message of at
    most `max_question_tokens` tokens, each question used once and never also
    as an exemplar. Requests behind the same context share at least
    `context_tokens` prompt tokens; requests behind different contexts share
    (almost) none.

summarization
    An instruction, a long document and `Summary:`: long prompts with almost
    no reuse, the cache-unfriendly contrast to qa. Documents are ShareGPT
    messages (user or assistant) of at least `min_document_tokens` tokens, cut
    to fit `max_prompt_tokens`; each is used once, and documents that start
    with the same 64 tokens (users re-pasting a text) count as one. Only the
    ~30-token instruction is shared. The scripted reply is the document's first
    `max_reply_tokens` tokens (a lead summary; ShareGPT has no reference
    summaries, and the reply's content does not change prefix reuse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from prefix_study.assets.tokenizer import encode
from prefix_study.workloads.chat_format import reply_ids, text_ids, user_segment_ids
from prefix_study.workloads.client import ConversationScript, ScriptedTurn
from prefix_study.workloads.sharegpt import Conversation

#: Exemplar replies in a qa context are cut to this many tokens, so a context
#: holds several exemplars rather than one long answer.
EXEMPLAR_REPLY_TOKENS = 96

QA_INSTRUCTION = (
    "[{context:02d}] Help desk profile. You answer questions from the users of a public help "
    "desk. Read each question carefully and answer it accurately, helpfully and briefly, in "
    "the style of the example conversations below. When a question is ambiguous, state the "
    "assumption you make before answering. Do not repeat the question, do not apologise, and "
    "keep every answer self-contained.\n\nExample conversations:"
)

SUMMARY_INSTRUCTION = (
    "Summarize the following document in a few sentences. Keep the key facts, names and "
    "numbers, and leave out everything else.\n\nDocument:\n"
)
SUMMARY_SUFFIX = "\n\nSummary:"

#: Documents whose first this-many tokens are equal count as the same document.
DOCUMENT_DEDUP_TOKENS = 64


class WorkloadError(ValueError):
    """The configured workload cannot be built from the loaded data."""


def _shuffled(items: list[Any] | tuple[Any, ...], rng: np.random.Generator) -> list[Any]:
    return [items[i] for i in rng.permutation(len(items))]


def _not_enough(name: str, what: str, got: int, wanted: int, pool: int) -> WorkloadError:
    return WorkloadError(
        f"workloads.{name}: found only {got} of {wanted} {what} in the {pool} loaded ShareGPT "
        f"conversations; raise dataset.max_conversations or lower workloads.{name}.num_conversations"
    )


def build_chat_single(
    name: str, wl: Any, conversations: tuple[Conversation, ...], rng: np.random.Generator
) -> list[ConversationScript]:
    """The first user message of `num_conversations` conversations that fit `max_prompt_tokens`."""
    scripts: list[ConversationScript] = []
    for conv in _shuffled(conversations, rng):
        first = conv.turns[0]
        prompt = user_segment_ids(first.user, first=True)
        if len(prompt) > wl.max_prompt_tokens:
            continue
        turn = ScriptedTurn(tuple(prompt), tuple(reply_ids(first.assistant, wl.max_reply_tokens)))
        scripts.append(ConversationScript("single", (turn,), source_id=conv.id))
        if len(scripts) == wl.num_conversations:
            return scripts
    raise _not_enough(name, "conversations whose first message fits max_prompt_tokens",
                      len(scripts), wl.num_conversations, len(conversations))


def multi_turn_script(conv: Conversation, max_turns: int, max_prompt_tokens: int,
                      max_reply_tokens: int) -> ConversationScript | None:
    """Grow one conversation's prompt by concatenating ids; None if turn 0 does not fit."""
    turns: list[ScriptedTurn] = []
    history: tuple[int, ...] = ()
    for k, exchange in enumerate(conv.turns[:max_turns]):
        prompt = history + tuple(user_segment_ids(exchange.user, first=(k == 0)))
        if len(prompt) > max_prompt_tokens:
            break
        reply = tuple(reply_ids(exchange.assistant, max_reply_tokens))
        turns.append(ScriptedTurn(prompt, reply))
        history = prompt + reply
    if not turns:
        return None
    return ConversationScript("multi", tuple(turns), source_id=conv.id)


def build_chat_multi(
    name: str, wl: Any, conversations: tuple[Conversation, ...], rng: np.random.Generator
) -> list[ConversationScript]:
    """Every turn (up to `max_turns`) of `num_conversations` conversations."""
    scripts: list[ConversationScript] = []
    for conv in _shuffled(conversations, rng):
        script = multi_turn_script(conv, wl.max_turns, wl.max_prompt_tokens, wl.max_reply_tokens)
        if script is None:
            continue
        scripts.append(script)
        if len(scripts) == wl.num_conversations:
            return scripts
    raise _not_enough(name, "conversations whose first turn fits max_prompt_tokens",
                      len(scripts), wl.num_conversations, len(conversations))


def _short_questions(conversations: list[Conversation], max_question_tokens: int
                     ) -> Iterator[tuple[Conversation, str]]:
    """Conversations whose first user message is short, each question text once."""
    seen: set[str] = set()
    for conv in conversations:
        question = conv.turns[0].user.strip()
        if question in seen or len(text_ids(question)) > max_question_tokens:
            continue
        seen.add(question)
        yield conv, question


def qa_context(index: int, context_tokens: int, exemplars: Iterator[tuple[Conversation, str]]
               ) -> tuple[int, ...] | None:
    """Instruction + few-shot exemplars, cut to exactly `context_tokens`; None if data ran out."""
    ids = encode(QA_INSTRUCTION.format(context=index))
    while len(ids) < context_tokens:
        pair = next(exemplars, None)
        if pair is None:
            return None
        conv, question = pair
        ids += user_segment_ids(question, first=False)
        ids += reply_ids(conv.turns[0].assistant, EXEMPLAR_REPLY_TOKENS)
    return tuple(ids[:context_tokens])


def build_qa(
    name: str, wl: Any, conversations: tuple[Conversation, ...], rng: np.random.Generator,
    assign_rng: np.random.Generator,
) -> list[ConversationScript]:
    """`num_conversations` short questions, each behind one of `num_contexts` shared contexts."""
    questions = _short_questions(_shuffled(conversations, rng), wl.max_question_tokens)
    contexts: list[tuple[int, ...]] = []
    for c in range(wl.num_contexts):
        context = qa_context(c, wl.context_tokens, questions)
        if context is None:
            raise _not_enough(name, "short-question exemplars for the contexts", c,
                              wl.num_contexts, len(conversations))
        contexts.append(context)
    assignment = assign_rng.integers(wl.num_contexts, size=wl.num_conversations)
    scripts: list[ConversationScript] = []
    for c in assignment:
        pair = next(questions, None)
        if pair is None:
            raise _not_enough(name, f"distinct questions of <= {wl.max_question_tokens} tokens",
                              len(scripts), wl.num_conversations, len(conversations))
        conv, question = pair
        prompt = contexts[int(c)] + tuple(user_segment_ids(question, first=False))
        if len(prompt) > wl.max_prompt_tokens:
            raise WorkloadError(
                f"workloads.{name}: a prompt of {len(prompt)} tokens (context_tokens="
                f"{wl.context_tokens} + question) exceeds max_prompt_tokens={wl.max_prompt_tokens}"
            )
        turn = ScriptedTurn(prompt, tuple(reply_ids(conv.turns[0].assistant, wl.max_reply_tokens)))
        scripts.append(ConversationScript("single", (turn,), source_id=conv.id,
                                          shared_prefix_group=f"{name}-context-{int(c):02d}"))
    return scripts


def build_summarization(
    name: str, wl: Any, conversations: tuple[Conversation, ...], rng: np.random.Generator
) -> list[ConversationScript]:
    """`num_conversations` requests, each an instruction + a distinct long document."""
    head = encode(SUMMARY_INSTRUCTION)
    tail = encode(SUMMARY_SUFFIX)
    budget = wl.max_prompt_tokens - len(head) - len(tail)
    if budget < wl.min_document_tokens:
        raise WorkloadError(
            f"workloads.{name}: max_prompt_tokens={wl.max_prompt_tokens} leaves {budget} tokens "
            f"for the document, less than min_document_tokens={wl.min_document_tokens}"
        )
    # Tokens never outnumber UTF-8 bytes, so shorter messages cannot qualify.
    candidates = [
        (conv.id, text)
        for conv in conversations
        for exchange in conv.turns
        for text in (exchange.user, exchange.assistant)
        if len(text.encode()) >= wl.min_document_tokens
    ]
    scripts: list[ConversationScript] = []
    seen: set[tuple[int, ...]] = set()
    for source_id, text in _shuffled(candidates, rng):
        document = text_ids(text)
        key = tuple(document[:DOCUMENT_DEDUP_TOKENS])
        if len(document) < wl.min_document_tokens or key in seen:
            continue
        seen.add(key)
        prompt = tuple(head + document[:budget] + tail)
        reply = tuple(document[: wl.max_reply_tokens])
        scripts.append(ConversationScript("single", (ScriptedTurn(prompt, reply),), source_id=source_id))
        if len(scripts) == wl.num_conversations:
            return scripts
    raise _not_enough(name, f"distinct documents of >= {wl.min_document_tokens} tokens",
                      len(scripts), wl.num_conversations, len(conversations))


ScriptBuilder = Callable[..., list[ConversationScript]]
SHAREGPT_BUILDERS: dict[str, ScriptBuilder] = {
    "chat_single": build_chat_single,
    "chat_multi": build_chat_multi,
    "qa": build_qa,
    "summarization": build_summarization,
}
