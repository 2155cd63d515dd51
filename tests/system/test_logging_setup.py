"""The log files: the guide's line format, rotation by size, errors also in error.log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from candlewise.config.app_config import LoggingConfig
from candlewise.system.logging_setup import FastRotatingFileHandler, configure_logging, get_logger


def test_lines_have_the_guides_format_and_files_rotate_by_size(tmp_path: Path) -> None:
    cfg = LoggingConfig(max_bytes=10_000, backup_count=2)
    configure_logging(tmp_path, cfg, console=False)
    log = get_logger("test")
    for i in range(600):
        log.info("[BTC/USDT @ 1h] Candle closed: O=%d.00 C=%d.50", i, i)
    log.error("[ETH/USDT] Error handling candle at 1: boom")
    main = tmp_path / "production_deployment.log"
    files = sorted(tmp_path.glob("production_deployment.log*"))
    assert [f.name for f in files] == [
        "production_deployment.log",
        "production_deployment.log.1",
        "production_deployment.log.2",
    ]
    assert all(f.stat().st_size <= 10_000 for f in files)
    assert re.fullmatch(
        r"\[\d\d:\d\d:\d\d\] \[ETH/USDT\] Error handling candle at 1: boom\n",
        main.read_text().splitlines(keepends=True)[-1],
    )
    assert "C=599.50" in main.read_text()
    assert (tmp_path / "error.log").read_text().count("\n") == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a full disk) here")
def test_a_log_file_on_a_full_disk_is_said_once_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("candlewise.test_full_disk")
    handler = FastRotatingFileHandler("/dev/full", maxBytes=1000, encoding="utf-8")
    logger.addHandler(handler)
    try:
        for i in range(3):
            logger.error("line %d", i)  # every write fails with ENOSPC
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capsys.readouterr().err
    assert err == (
        "⚠ cannot write /dev/full: No space left on device; "
        "its log lines are dropped until it can be written\n"
    )
