"""One eviction policy per module; each registers itself with
`prefix_study.replay.policies.register_policy`. Adding a policy = adding a file."""
