"""Aggregator: exact running aggregates in Postgres (clean → aggregates)."""
