"""N serving replicas behind a router: vLLM-exact prefix caches per replica,
a cost-model queue per replica, and the 2025-26 routers (cluster/routers/)."""
