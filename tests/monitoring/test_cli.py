"""``monitor_production.py`` run as the operator runs it: under tmux, ``--report``, bad input."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from candlewise.monitoring.screen import fmt_money
from candlewise.store.db import open_store
from tests.monitoring.conftest import MONITOR, query, run_monitor
from tests.phase1_project import SYMBOL

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

FMT = "%Y-%m-%d %H:%M:%S"


def _last_event(db: Path) -> str:
    ((ref,),) = query(
        db, "SELECT MAX(t) FROM (SELECT MAX(cursor_time) AS t FROM engine_runs "
        "UNION ALL SELECT MAX(timestamp) FROM confidence_history)"
    )  # fmt: skip
    return str(ref)


def _minus(text: str, hours: float) -> str:
    moment = datetime.strptime(text, FMT).replace(tzinfo=UTC) - timedelta(hours=hours)
    return moment.strftime(FMT)


def _trades(db: Path, symbol: str, lo: str, hi: str) -> tuple[int, int, float]:
    ((n, wins, pnl),) = query(
        db, "SELECT COUNT(*), COALESCE(SUM(outcome = 'WIN'), 0), COALESCE(SUM(pnl_absolute), 0) "
        "FROM trade_outcomes WHERE symbol = ? AND exit_time > ? AND exit_time <= ?",
        symbol, lo, hi,
    )  # fmt: skip
    return int(n), int(wins), float(pnl)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_monitor_in_tmux(project: Path) -> None:
    """The live screen in a 120x60 terminal: sections, the store's numbers, redrawn in place."""
    db = project / "data" / "trading.db"
    socket = f"cw-mon-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-u", "-L", socket]
    command = f"{sys.executable} {MONITOR} --refresh 1"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "mon", "-x", "120", "-y", "60", "-c", str(project),
         command], check=True, timeout=10,
    )  # fmt: skip

    def capture() -> str:
        done = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "mon"], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    try:
        screens: list[str] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            pane = capture()
            if "Last Update:" in pane and (not screens or pane != screens[-1]):
                screens.append(pane)
                if len(screens) >= 2:
                    break
            time.sleep(0.3)
        assert screens, f"no screen within 40 s:\n{capture()}"
        pane = screens[-1]
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10, check=False)

    ref = _last_event(db)
    n, wins, pnl = _trades(db, SYMBOL, _minus(ref, 24), ref)
    mark = "✓" if pnl > 0 else "✗"
    for line in (
        "PRODUCTION MONITOR - ",
        "📊 SYSTEM STATUS",
        "⚠ No deployment running",
        f"Figures as of the last stored event: {ref} UTC",
        "  Error Rate (1h): 0.00%",
        "  Active Symbols: 0",
        f"📈 {SYMBOL}",
        "  💰 Performance (24h)",
        f"    {mark} P&L: {fmt_money(pnl)} ({pnl / 100:.2f}%)",
        f"    Win Rate: {100 * wins / n:.2f}% ({wins}/{n} trades)",
        "  🎯 Recent Activity",
        "| Refresh: 1s | Alerts Sent: ",
    ):
        assert line in pane, f"{line!r} not on the screen:\n{pane}"
    assert pane.count("PRODUCTION MONITOR") == 1, "each redraw replaces the previous screen"
    assert len(screens) == 2, "the screen was not redrawn within 40 s"


def test_report_6h(project: Path) -> None:
    db = project / "data" / "trading.db"
    done = run_monitor(project, "--report", "--hours", "6")
    assert done.returncode == 0, done.stderr
    (path,) = (project / "production_reports").glob("report_*.json")
    assert path.name[len("report_") : -len(".json")].replace("_", "").isdigit()
    assert f"Report: production_reports/{path.name}" in done.stdout
    report = json.loads(path.read_text())
    for key in ("generated_at", "period_hours", "system", "symbols", "alerts", "health_checks"):
        assert key in report
    assert report["period_hours"] == 6
    ref = _last_event(db)
    lo = _minus(ref, 6)
    assert (report["window"]["start"], report["window"]["end"]) == (lo, ref)
    s = report["symbols"][SYMBOL]
    n, wins, pnl = _trades(db, SYMBOL, lo, ref)
    assert (s["trades"], s["wins"]) == (n, wins)
    assert s["pnl"] == pytest.approx(pnl, abs=1e-5)
    assert s["win_rate"] == pytest.approx(wins / n if n else 0.0, abs=1e-6)
    reasons = dict(query(
        db, "SELECT trigger_reason, COUNT(*) FROM retraining_history WHERE symbol = ? "
        "AND triggered_at > ? AND triggered_at <= ? GROUP BY 1", SYMBOL, lo, ref,
    ))  # fmt: skip
    assert s["retrains"]["by_reason"] == reasons
    assert set(s) >= {"max_drawdown_percent", "sharpe", "mode_share", "confidence"}
    ((signals, mean),) = query(
        db, "SELECT COUNT(*), AVG(confidence_score) FROM confidence_history WHERE symbol = ? "
        "AND timestamp > ? AND timestamp <= ?", SYMBOL, lo, ref,
    )  # fmt: skip
    assert s["confidence"]["signals"] == signals
    assert s["confidence"]["mean"] == pytest.approx(mean, abs=1e-6)
    assert sum(s["mode_share"].values()) == pytest.approx(1.0, abs=1e-5)
    # alerts: the stored ones of the window, then the verdict's failed criteria
    stored = query(
        db, "SELECT timestamp, level, message FROM alerts WHERE timestamp > ? AND timestamp <= ?"
        " ORDER BY timestamp, id", lo, ref,
    )  # fmt: skip
    alerts = report["alerts"]
    assert [(a["time"], a["level"], a["message"]) for a in alerts if a["source"] == "alerts"] == [
        tuple(r) for r in stored
    ]
    assert all({"time", "level", "symbol", "message"} <= set(a) for a in alerts)
    ((criteria,),) = query(db, "SELECT criteria FROM deployments ORDER BY id DESC LIMIT 1")
    failed = [k for k, c in json.loads(criteria)["criteria"].items() if not c["passed"]]
    verdict = [a["message"] for a in alerts if a["source"] == "verdict"]
    assert len(verdict) == len(failed) and all(
        any(f"✗ {name}:" in m for m in verdict) for name in failed
    )
    ((checks, bad),) = query(
        db, "SELECT COUNT(*), COALESCE(SUM(NOT passed), 0) FROM health_checks "
        "WHERE timestamp > ? AND timestamp <= ?", lo, ref,
    )  # fmt: skip
    assert (report["health_checks"]["total"], report["health_checks"]["failed"]) == (checks, bad)
    if shutil.which("jq"):  # the guide's own commands
        for expr in (".alerts", ".symbols"):
            out = subprocess.run(
                f"cat production_reports/report_*.json | jq '{expr}'",
                shell=True, cwd=project, capture_output=True, text=True, timeout=10, check=True,
            )  # fmt: skip
            assert json.loads(out.stdout) == report[expr[1:]]


def test_report_48h_ranks_and_flags_two_symbols(two_symbol_project: Path) -> None:
    root = two_symbol_project
    db = root / "bt.db"
    done = run_monitor(root, "--db", f"sqlite:///{db}", "--report", "--hours", "48")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split("Report: ")[1].strip())
    report = json.loads((root / path).read_text())
    ref = _last_event(db)
    lo = _minus(ref, 48)
    figures = {s: _trades(db, s, lo, ref) for s in ("BTC/USDT", "ETH/USDT")}
    expected_order = sorted(figures, key=lambda s: -figures[s][2])
    assert [r["symbol"] for r in report["ranking"]] == expected_order
    assert list(report["symbols"]) == expected_order
    retrains = dict(query(
        db, "SELECT symbol, COUNT(*) FROM retraining_history WHERE triggered_at > ? "
        "AND triggered_at <= ? GROUP BY symbol", lo, ref,
    ))  # fmt: skip
    expected_flags = set()
    for s, (n, wins, _) in figures.items():
        if n and wins / n < 0.50:
            expected_flags.add((s, "win_rate_below_threshold"))
        if retrains.get(s, 0) / 2 > 12:  # monitoring.excessive_retrains_per_day default
            expected_flags.add((s, "excessive_retraining"))
    ((errors,),) = query(db, "SELECT COUNT(*) FROM error_log")
    assert errors == 0  # so no high_error_rate flag is expected
    assert {(f["symbol"], f["sign"]) for f in report["flags"]} == expected_flags
    assert expected_flags, "the backtest should show at least one underperformance sign"
    for rank, s in enumerate(expected_order, 1):
        assert f"  {rank}. {s}: P&L {fmt_money(figures[s][2])}" in done.stdout
    assert "Underperformance signs:" in done.stdout


def test_empty_database(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path / 'data' / 'trading.db'}").dispose()
    screen = run_monitor(tmp_path, "--once")
    assert screen.returncode == 0, screen.stderr
    assert "holds no trading events yet" in screen.stdout
    assert "python deploy_production.py --phase 1 --symbol BTC/USDT" in screen.stdout
    assert "Win Rate" not in screen.stdout and "Uptime" not in screen.stdout
    report = run_monitor(tmp_path, "--report", "--hours", "6")
    assert report.returncode == 1
    assert report.stdout.startswith("Nothing to report")
    assert not list(tmp_path.glob("production_reports/report_*.json"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "DOGE/USDT", "--once"], "Error: unknown symbol DOGE/USDT: it is not in"),
        (["--symbol", "BTCUSDT", "--once"], "Error: malformed symbol 'BTCUSDT'"),
        (["--db", "sqlite:///missing.db", "--once"], "Error: database not found: missing.db"),
        (["--report", "--hours", "abc"], "Error: invalid --hours 'abc'"),
        (["--report", "--hours", "-6"], "Error: invalid --hours '-6'"),
        (["--report", "--hours", "0"], "Error: invalid --hours '0'"),
        (["--refresh", "0"], "Error: invalid --refresh '0'"),
    ],
)
def test_bad_input(phase1_project: Path, args: list[str], message: str) -> None:
    done = run_monitor(phase1_project, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert "Hint: " in done.stderr and "Traceback" not in done.stderr
    assert not done.stdout


def test_ctrl_c_exits_130(phase1_project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(MONITOR), "--refresh", "1"],
        cwd=phase1_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = ""  # the first screen is drawn: the monitor is past its start-up
        deadline = time.monotonic() + 60
        while "PRODUCTION MONITOR" not in first and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            first += line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        out = first + out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "PRODUCTION MONITOR" in out and "Traceback" not in err
