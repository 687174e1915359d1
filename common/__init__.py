"""What the four services share: Kafka and Postgres plumbing, the embedded
servers, error classes, metrics, settings, the referential and the catalogue.

It sits between ``schemas/`` (below) and ``services/`` (above); it never
imports a service or the ``itte`` command.
"""
