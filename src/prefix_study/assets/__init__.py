"""Offline model assets: the real GPT-2 tokenizer and a random-weight GPT-2."""
