"""The savings stage: what each cache hit buys for a named model on a named
GPU (prefill FLOPs, TTFT), block sizes compared at equal memory, and engine
TTFT with vs without prefix caching (under engine.clock=cost_model)."""
