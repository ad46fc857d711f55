"""Hydra configuration: typed schema (`schema`), composition (`compose`),
validation (`validate`), a composed config as a file (`resolved`), stage hashes (`hashing`), input files (`inputs`).

Import from the submodule: this `__init__` runs whenever any of them is
imported, and stage libraries import `config.schema`, which must not bring
Hydra along (tests/test_architecture.py)."""
