"""Block-access traces: derived from the engine (derive.py) or imported from
external block-hash traces (importers.py), all in the trace contract schema."""
