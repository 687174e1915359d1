"""The contract between itte's services: one module per Kafka topic.

Each module names its topic (``TOPIC``) beside the pydantic models of the
messages it carries. ``itte schemas export`` writes their JSON Schema to
``schemas/json/`` for producers written in other languages.
"""
