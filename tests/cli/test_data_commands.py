"""``candlewise data ...`` as a user runs it: simulate, import, stream (3 feeds), summary."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.core.timeframes import MINUTE_MS
from tests.conftest import SHARED, needs_shared
from tests.market.binance_servers import (
    BinanceRestServer,
    BinanceWsServer,
    Drop,
    ScriptClock,
    Send,
    Stall,
    in_progress,
    make_series,
)


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_simulate_stores_all_timeframes_and_regimes(workdir: Path, capsys) -> None:
    assert (
        run(["data", "simulate", "--symbols", "BTC/USDT,SOL/USDT", "--days", "2", "--seed", "3"])
        == 0
    )
    out = capsys.readouterr().out
    assert "✓ BTC/USDT: 2,880 simulated 1m candles (seed 3)" in out
    assert "Simulated market: not real prices." in out
    db = workdir / "data" / "trading.db"
    counts = dict(
        rows(db, "SELECT timeframe, COUNT(*) FROM candles WHERE symbol='SOL/USDT' GROUP BY 1")
    )
    assert counts["1m"] == 2880
    assert counts["1h"] in (47, 48) and counts["5m"] in (575, 576)
    regimes = dict(rows(db, "SELECT regime, COUNT(*) FROM simulated_regimes GROUP BY 1"))
    assert sum(regimes.values()) == 2 * 2880 and set(regimes) <= {
        "noise",
        "trend",
        "mean_reversion",
    }


def test_stream_simulated_then_again_appends_without_overlap(workdir: Path, capsys) -> None:
    assert (
        run(["data", "stream", "--feed", "simulated", "--symbols", "BTC/USDT", "--duration", "3h"])
        == 0
    )
    assert "✓ 180 new 1m candles recorded from the simulated feed" in capsys.readouterr().out
    assert (
        run(["data", "stream", "--feed", "simulated", "--symbols", "BTC/USDT", "--duration", "3h"])
        == 0
    )
    db = workdir / "data" / "trading.db"
    series = rows(db, "SELECT open_time, open, close FROM candles WHERE timeframe='1m' ORDER BY 1")
    times = [t for t, _, _ in series]
    assert len(times) == len(set(times)) >= 180
    assert all(b - a == MINUTE_MS for a, b in itertools.pairwise(times))
    # one history: each minute opens exactly where the previous one closed, across both runs
    assert all(b[1] == a[2] for a, b in itertools.pairwise(series))
    log = (workdir / "logs" / "production_deployment.log").read_text()
    assert "[BTC/USDT @ 1h] Candle closed: O=" in log


def test_import_then_replay_from_the_store(workdir: Path, tmp_path: Path, capsys) -> None:
    from candlewise.market.simulated import SimulatedMarket

    series = SimulatedMarket(["ETH/USDT"], 8, 1_735_689_600_000).generate(1440)["ETH/USDT"]
    path = tmp_path / "eth.parquet"
    series.to_frame().drop(columns="regime").to_parquet(path)
    assert (
        run(
            [
                "data",
                "import",
                str(path),
                "--symbol",
                "ETH/USDT",
                "--timeframe",
                "1m",
                "--db",
                "sqlite:///import.db",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "1,440 new ETH/USDT 1m candles stored (1,440 read, 0 rejected, 0 repaired)" in out
    assert "derived from 1m: 5m 288, 15m 96, 1h 24, 4h 6, 1d 1" in out
    assert (
        run(
            [
                "data",
                "stream",
                "--feed",
                "replay",
                "--symbols",
                "ETH/USDT",
                "--duration",
                "2h",
                "--db",
                "sqlite:///import.db",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "✓ 0 new 1m candles recorded from the replay feed" in out.out
    assert "(120 already stored, 0 rejected)" in out.out
    assert out.err == ""  # replaying what is stored is no error


@needs_shared
def test_import_real_bnb_file_with_exchange_gaps(workdir: Path, capsys) -> None:
    assert SHARED is not None
    path = SHARED / "data" / "candles" / "BNB_USDT-1m.csv.gz"
    assert run(["data", "import", str(path), "--symbol", "BNB/USDT", "--timeframe", "1m"]) == 0
    db = workdir / "data" / "trading.db"
    assert rows(db, "SELECT COUNT(*) FROM candles WHERE timeframe='1m'") == [(42760,)]
    # the 2021-04-20 outage (150 missing minutes) leaves a partial 1h bucket, not a hole in 1d
    assert rows(db, "SELECT COUNT(*) FROM candles WHERE timeframe='1d'") == [(29,)]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["data", "import", "nope.csv", "--symbol", "BTC/USDT", "--timeframe", "1m"],
            "file not found",
        ),
        (["data", "simulate", "--symbols", "BTCUSDT"], "malformed symbol 'BTCUSDT'"),
        (["data", "stream", "--duration", "forever"], "invalid duration"),
        (["data", "stream", "--speed", "warp"], "invalid speed"),
        (["data", "stream", "--feed", "kraken"], "unknown feed 'kraken'"),
        (
            ["data", "download", "--symbol", "BTC/USDT", "--timeframe", "2h"],
            "unknown timeframe '2h'",
        ),
    ],
)
def test_user_mistakes_exit_2_with_a_message(
    workdir: Path, capsys, argv: list[str], fragment: str
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_summary_on_an_empty_store(workdir: Path, capsys) -> None:
    assert run(["data", "summary"]) == 0
    assert "holds no candles yet" in capsys.readouterr().out


class _ServerThread:
    """Runs the asyncio websocket server in its own thread while the CLI runs in this one."""

    def __init__(self, server: BinanceWsServer) -> None:
        self.server = server
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.__aenter__())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.__aexit__(None, None, None))

    def __enter__(self) -> BinanceWsServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def binance_servers() -> Iterator[tuple[BinanceWsServer, BinanceRestServer, dict]]:
    now = int(time.time() * 1000)
    start = now - now % MINUTE_MS - 10 * MINUTE_MS
    series = make_series(["BTC/USDT"], start, 13)
    btc = series["BTC/USDT"]
    scripts = [
        [Send(in_progress(btc[10], 0), False), Send(btc[9], True), Drop()],  # lost mid-minute
        [Send(in_progress(btc[10], 1), False), Stall()],
    ]
    ws = BinanceWsServer(scripts, ScriptClock(now))
    with BinanceRestServer(series, lambda: int(time.time() * 1000)) as rest, _ServerThread(ws):
        yield ws, rest, series


@pytest.mark.timeout(60)
def test_stream_binance_backfills_after_a_drop_into_the_store(
    workdir: Path, binance_servers, capsys
) -> None:
    ws, rest, series = binance_servers
    btc = series["BTC/USDT"]
    (workdir / "config.yaml").write_text(
        f"symbols: [BTC/USDT]\nexchange:\n  rest_url: {rest.url}\n  ws_url: {ws.url}\n"
    )
    import pandas as pd

    from candlewise.market.ingest import ingest_frame
    from candlewise.store.db import open_store

    engine = open_store("sqlite:///data/trading.db")
    first = pd.DataFrame(
        [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in btc[:4]],
        columns=["timestamp", "open", "high", "low", "close", "volume"],
    )
    ingest_frame(engine, first, "BTC/USDT", "1m", "import")
    engine.dispose()

    assert run(["data", "stream", "--feed", "binance", "--duration", "4s"]) == 0
    assert "1m candles recorded from the binance feed" in capsys.readouterr().out
    stored = rows(
        workdir / "data" / "trading.db",
        "SELECT open_time, open, high, low, close, volume FROM candles "
        "WHERE timeframe='1m' ORDER BY open_time",
    )
    expected = [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in btc]
    assert len(stored) >= 10
    assert stored == expected[: len(stored)]  # no hole, no duplicate, exact closed values
    assert len(ws.paths) >= 2  # it reconnected after the drop
    assert rest.klines_count() >= 1  # and backfilled over REST
    errors = rows(workdir / "data" / "trading.db", "SELECT message FROM error_log")
    assert errors == []


def test_download_stores_the_closed_candles(workdir: Path, capsys) -> None:
    now = int(time.time() * 1000)
    start = now - now % MINUTE_MS - 2500 * MINUTE_MS  # 2,500 closed minutes: 3 REST pages
    series = make_series(["ETH/USDT"], start, 2501)  # the last one is still forming
    with BinanceRestServer(series, lambda: int(time.time() * 1000)) as rest:
        (workdir / "config.yaml").write_text(f"exchange:\n  rest_url: {rest.url}\n")
        assert run(["data", "download", "--symbol", "ETH/USDT", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert "✓ Downloaded from Binance: 2,500 new ETH/USDT 1m candles stored" in out
    stored = rows(
        workdir / "data" / "trading.db",
        "SELECT open_time, close FROM candles WHERE timeframe='1m' ORDER BY 1",
    )
    assert stored == [(c.open_time, c.close) for c in series["ETH/USDT"][:2500]]


def test_simulated_and_real_histories_are_never_mixed(
    workdir: Path, tmp_path: Path, capsys
) -> None:
    assert run(["data", "simulate", "--symbols", "BTC/USDT", "--days", "0.2"]) == 0
    path = tmp_path / "BTC_USDT-1m.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n1735689600000,1,2,0.5,1.5,3\n"
        "1735689660000,1.5,2,1,1.2,3\n1735689720000,1.2,2,1,1.1,3\n"
    )
    assert run(["data", "import", str(path), "--symbol", "BTC/USDT", "--timeframe", "1m"]) == 2
    err = capsys.readouterr().err
    assert "already holds simulated (seed 42) candles" in err and "--db" in err


def test_import_rejects_bad_rows_alone_and_explains_close_times(
    workdir: Path, tmp_path: Path, capsys
) -> None:
    good = tmp_path / "SOL_USDT-1m.csv"
    good.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(
            f"{1735689600000 + i * 60000},{'abc' if i == 2 else 10},11,9,10,5\n" for i in range(5)
        )
    )
    assert run(["data", "import", str(good), "--symbol", "SOL/USDT", "--timeframe", "1m"]) == 0
    assert "4 new SOL/USDT 1m candles stored (5 read, 1 rejected" in capsys.readouterr().out
    closes = tmp_path / "close_times.csv"
    closes.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{1735689659999 + i * 60000},10,11,9,10,5\n" for i in range(5))
    )
    assert run(["data", "import", str(closes), "--symbol", "ETH/USDT", "--timeframe", "1m"]) == 2
    err = capsys.readouterr().err
    assert "all 5 rows were rejected" in err and "close times" in err


@pytest.mark.timeout(120)
def test_sigterm_saves_what_was_received_and_exits_130(workdir: Path) -> None:
    import signal
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("candlewise")
    proc = subprocess.Popen(
        [
            str(exe),
            "data",
            "stream",
            "--feed",
            "simulated",
            "--symbols",
            "BTC/USDT",
            "--duration",
            "6h",
            "--speed",
            "1800",
        ],  # 12 s of wall time in all
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = workdir / "data" / "trading.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until candles are being written
        time.sleep(0.5)
        try:
            if db.exists() and rows(db, "SELECT COUNT(*) FROM candles")[0][0] > 0:
                break
        except sqlite3.OperationalError:  # the file exists before its tables do
            continue
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Interrupted:" in out and "Traceback" not in err
    saved = rows(db, "SELECT COUNT(*) FROM candles WHERE timeframe='1m'")[0][0]
    reported = int(out.split("Interrupted: ")[1].split(" new")[0].replace(",", ""))
    assert saved == reported > 0  # every candle received was saved


@pytest.mark.parametrize(("unit", "scale"), [("seconds", 1 / 1000), ("microseconds", 1000),
                                             ("nanoseconds", 1_000_000)])  # fmt: skip
def test_import_reads_any_epoch_unit_and_never_stores_an_implausible_date(
    workdir: Path, tmp_path: Path, capsys, unit: str, scale: float
) -> None:
    """A file in s/us/ns is stored at the right dates; a row in another unit is rejected."""
    from candlewise.store import candle_store
    from candlewise.store.db import open_store

    t0 = 1735689600000  # 2025-01-01
    rows = [int((t0 + i * 60000) * scale) for i in range(2880)]
    rows[5] = t0 + 5 * 60000  # this one row in ms: read in the file's unit it is no real date
    path = tmp_path / "BTC_USDT-1m.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n" + "".join(f"{t},10,11,9,10,5\n" for t in rows)
    )
    assert run(["data", "import", str(path), "--symbol", "BTC/USDT", "--timeframe", "1m"]) == 0
    out = capsys.readouterr().out
    assert f"timestamps are in {unit} since the epoch" in out
    assert "2,879 new BTC/USDT 1m candles stored (2,880 read, 1 rejected" in out
    assert "_timestamp at data row 6: open_time 1735689" in out  # implausible or fractional
    engine = open_store("sqlite:///data/trading.db")
    spans = {tf: (n, first, last) for _s, tf, n, first, last in candle_store.summary(engine)}
    engine.dispose()
    assert spans["1m"] == (2879, t0, t0 + 2879 * 60000)
    assert spans["1d"] == (2, t0, t0 + 86_400_000)


def test_import_rejects_a_non_numeric_timestamp_row_alone(
    workdir: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "ETH_USDT-1m.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{'n/a' if i == 3 else 1735689600000 + i * 60000},10,11,9,10,5\n"
                  for i in range(6))
    )  # fmt: skip
    assert run(["data", "import", str(path), "--symbol", "ETH/USDT", "--timeframe", "1m"]) == 0
    captured = capsys.readouterr()
    assert "5 new ETH/USDT 1m candles stored (6 read, 1 rejected" in captured.out
    assert "at data row 4: open_time 'n/a' is not an integer (rejected)" in captured.out
    assert "Warning" not in captured.err and captured.err == ""
