"""Cleaner: validates, normalizes and hashes personal data (raw → clean)."""
