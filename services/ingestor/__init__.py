"""Ingestor: accepts observations (HTTP, files) and publishes them raw."""
