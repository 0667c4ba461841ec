"""Evaluation protocols of the papers' tables, built on ``lrkit.metrics`` (generation of the evaluated sets,
metric batches, and tables that put reproduced numbers next to the paper's)."""
