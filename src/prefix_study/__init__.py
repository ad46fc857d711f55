"""prefix-study: prefix (KV-cache) sharing in LLM serving, measured on vLLM."""
