"""Secrets never reach disk or the terminal: plant recognisable keys, run commands, grep output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.config.secrets import Secrets, load_secrets, set_active
from candlewise.store.db import open_store
from candlewise.store.error_log import record_error
from candlewise.system.logging_setup import get_logger

KEY = "PLANTEDKEY-7c1d4e9a2b"
SECRET = "PLANTEDSECRET-f00dfeed42"
TOKEN = "PLANTEDTOKEN-0123abcd"


def test_env_wins_over_dotenv_and_repr_hides_values(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"BINANCE_API_KEY=from-file-123456\nBINANCE_API_SECRET={SECRET}\n")
    secrets = load_secrets(env_file, environ={"BINANCE_API_KEY": KEY})
    assert secrets.get("BINANCE_API_KEY") == KEY
    assert secrets.get("BINANCE_API_SECRET") == SECRET
    assert KEY not in repr(secrets) and SECRET not in repr(secrets)
    assert secrets.redact(f"key={KEY}&s={SECRET}") == "key=***&s=***"


def _everything_written(root: Path) -> bytes:
    blobs = []
    for path in root.rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


def test_planted_secrets_appear_nowhere(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / ".env").write_text(f"BINANCE_API_SECRET={SECRET}\nTELEGRAM_BOT_TOKEN={TOKEN}\n")
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    (workdir / "config.yaml").write_text("exchange:\n  rest_url: http://127.0.0.1:9/api/v3\n")
    assert run(["data", "simulate", "--days", "0.05", "--symbols", "BTC/USDT"]) == 0
    # a command that hands the keys to ccxt and fails: its error must not echo them
    assert run(["data", "download", "--symbol", "BTC/USDT", "--days", "0.01"]) == 2
    assert run(["backup"]) == 0
    # code that carelessly logs or stores a secret still writes it masked
    get_logger("test").error("request failed: apiKey=%s secret=%s", KEY, SECRET)
    engine = open_store("sqlite:///data/trading.db")
    with engine.begin() as conn:
        record_error(conn, "exchange", f"signature {SECRET} rejected for token {TOKEN}")
    engine.dispose()
    for handler in logging.getLogger("candlewise").handlers:
        handler.flush()
    shown = capsys.readouterr()
    written = _everything_written(workdir / "data") + _everything_written(workdir / "logs")
    written += _everything_written(workdir / "backups")
    assert b"***" in written  # the careless lines were written, masked
    for planted in (KEY, SECRET, TOKEN):
        assert planted not in shown.out + shown.err
        assert planted.encode() not in written


def test_short_values_are_not_used_for_masking() -> None:
    set_active(Secrets({"TELEGRAM_CHAT_ID": "1"}))
    from candlewise.config.secrets import redact

    assert redact("BTC/USDT 1h 1 trade") == "BTC/USDT 1h 1 trade"
