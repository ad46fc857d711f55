"""Figures, run index and report of a pipeline run."""
