"""The backup commands' small parts (the whole: tests/e2e/test_backup.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from itte import backup


def test_the_postgres_tools_come_from_itte_pg_bin_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "pg_dump"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("ITTE_PG_BIN", str(tmp_path))
    assert backup.pg_tool("pg_dump") == str(tool)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(backup.BackupError, match="pg_nothing not found"):
        backup.pg_tool("pg_nothing")


def test_a_restore_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(backup.BackupError, match="no such file"):
        backup.restore("postgresql://nobody@/nothing", "localhost:1", {}, tmp_path / "x.dump")


def test_the_offsets_read_as_one_line() -> None:
    offsets = {"itte-aggregator": [("indicators.clean", 0, 12), ("indicators.clean", 1, -1)]}
    assert backup.summary(offsets) == (
        '{"itte-aggregator": {"indicators.clean/0": 12, "indicators.clean/1": -1}}'
    )
