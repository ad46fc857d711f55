"""Role-marked prompt segments, tokenized one segment at a time.

A multi-turn prompt is built by concatenating token ids, never by
re-tokenizing a growing transcript: BPE merges across a segment boundary could
otherwise change earlier tokens, and then turn k+1 would not start with the
exact tokens (and KV blocks) of turn k. Each segment starts with its own
marker, so tokenizing it alone is well defined.
"""

from __future__ import annotations

from prefix_study.assets.tokenizer import encode

FIRST_USER_MARKER = "User: "
NEXT_USER_MARKER = "\n\nUser: "
ASSISTANT_MARKER = "\n\nAssistant:"


def user_segment_ids(text: str, first: bool) -> list[int]:
    """`User: <text>\\n\\nAssistant:` (preceded by a blank line after the first turn)."""
    marker = FIRST_USER_MARKER if first else NEXT_USER_MARKER
    return encode(f"{marker}{text.strip()}{ASSISTANT_MARKER}")


def reply_ids(text: str, max_tokens: int) -> list[int]:
    """The assistant's reply as it follows `Assistant:`, cut to `max_tokens`."""
    return encode(" " + text.strip())[:max_tokens]


def text_ids(text: str) -> list[int]:
    """Token ids of a message's text alone (for length checks and documents)."""
    return encode(text.strip())
