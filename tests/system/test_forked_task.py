"""``ForkedTask``: work in a forked child, its result and log lines back, failures reported."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest
from sqlalchemy import Engine

from candlewise.system.forked_task import ForkedTask
from candlewise.system.logging_setup import get_logger


def _work() -> dict[str, int]:
    get_logger("test").info("worked in %d", os.getpid())
    return {"pid": os.getpid()}


def test_the_result_and_the_log_lines_come_back(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="candlewise")
    task = ForkedTask(_work, sqlite_engine).start()
    child = task.pid
    assert child is not None and child != os.getpid()
    assert task.wait() is True
    assert task.result == {"pid": child}
    lines = [r for r in caplog.records if r.getMessage().startswith("worked in")]
    assert [r.getMessage() for r in lines] == [f"worked in {child}"]
    assert lines[0].process == child  # the child's record, re-emitted here
    assert task.pid is None  # reaped


def test_a_failure_says_false(sqlite_engine: Engine) -> None:
    def fail() -> None:
        raise RuntimeError("bad data")

    task = ForkedTask(fail, sqlite_engine).start()
    assert task.wait() is False
    assert task.result is None


def test_end_stops_a_child_no_longer_wanted(sqlite_engine: Engine) -> None:
    """Also when this process handles SIGTERM itself (as a backtest or deployment does)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        task = ForkedTask(lambda: time.sleep(60), sqlite_engine).start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    child = task.pid
    task.end()  # the child sleeps 60 s: end() returns because it stopped the child
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # type: ignore[arg-type]
