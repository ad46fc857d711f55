"""Live capture of a vLLM server's KV-cache events (ZMQ) and its clients' requests."""
