"""The page through Streamlit's AppTest: mode indicator, panels, placeholder, filters, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from candlewise.dashboard.app import NEWS_PLACEHOLDER
from candlewise.store.db import open_store
from tests.dashboard.expected import latest_event, latest_mode, latest_trade, query
from tests.phase1_project import SYMBOL

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

SCRIPT = Path(__file__).resolve().parents[2] / "dashboard_continuous_learning.py"


def run_app() -> AppTest:
    at = AppTest.from_file(str(SCRIPT), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(phase1_project: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.chdir(phase1_project)  # ./config.yaml and its sqlite:///data/trading.db
    return run_app()


def captions(at: AppTest, word: str) -> list[str]:
    return [c.value for c in at.caption if word in c.value]


def test_mode_indicator_and_panels(app: AppTest, phase1_project: Path) -> None:
    [mode] = [m for m in app.metric if m.label == SYMBOL]
    assert mode.value == latest_mode(phase1_project, SYMBOL)
    assert [h.value for h in app.subheader] == [
        "Mode",
        "Confidence trend",
        "Multi-timeframe signals",
        "Equity and drawdown",
        "News sentiment",
        "Retraining history",
        "Recent trades",
    ]
    assert [i.value for i in app.info] == [NEWS_PLACEHOLDER]
    assert "No news source is configured" in NEWS_PLACEHOLDER
    exit_time, direction, timeframe, pnl = latest_trade(phase1_project)
    [line] = [m.value for m in app.markdown if m.value.startswith("Latest trade:")]
    assert f"{SYMBOL} {timeframe} {direction}" in line
    assert f"exit {exit_time} UTC" in line and f"P&L {pnl:+.2f} USDT" in line
    assert f"→ {latest_event(phase1_project)} UTC" in captions(app, "Window:")[0]
    assert "TRADING from 51.0%" in captions(app, "TRADING from")[0]  # the project's config
    assert "below 50.5%" in captions(app, "TRADING from")[0]


def test_time_range_filter(app: AppTest, phase1_project: Path) -> None:
    total = query(phase1_project, "SELECT COUNT(*) FROM retraining_history")[0][0]
    app.selectbox(key="range").set_value("all").run()
    assert captions(app, "attempts")[0].startswith(f"{total} attempts")
    assert "Window: start →" in captions(app, "Window:")[0]
    app.selectbox(key="range").set_value("6h").run()
    since = captions(app, "Window:")[0].split("Window: ")[1][:19]
    recent = query(
        phase1_project, "SELECT COUNT(*) FROM retraining_history WHERE triggered_at >= ?", (since,)
    )[0][0]
    assert 0 < recent < total
    assert captions(app, "attempts")[0].startswith(f"{recent} attempts")


def test_symbol_filter(app: AppTest) -> None:
    assert app.multiselect(key="symbols").value == [SYMBOL]
    app.multiselect(key="symbols").set_value([]).run()
    assert [w.value for w in app.warning] == [
        "No symbol selected: choose at least one in the sidebar."
    ]
    assert not app.metric and not app.subheader
    app.multiselect(key="symbols").set_value([SYMBOL]).run()
    assert [m.value for m in app.metric if m.label == SYMBOL]


def test_auto_refresh_can_be_switched_off(app: AppTest) -> None:
    assert app.checkbox(key="auto_refresh").label == "Auto-refresh every 30 s"
    app.checkbox(key="auto_refresh").uncheck().run()
    assert not app.exception and [m for m in app.metric if m.label == SYMBOL]


def test_missing_database(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", f"sqlite:///{workdir / 'none' / 'x.db'}")
    at = run_app()
    assert "database not found" in at.error[0].value
    assert "make demo" in at.info[0].value and "deploy_production.py" in at.info[0].value
    assert not (workdir / "none").exists()


def test_empty_database(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{workdir / 'empty.db'}"
    open_store(url).dispose()
    monkeypatch.setenv("CANDLEWISE_DATABASE_URL", url)
    at = run_app()
    assert not at.error
    assert "has no signals or trades yet" in at.info[0].value and "make demo" in at.info[0].value


def test_bad_config(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("risk: {daily_loss_limit: 5}\n")
    at = run_app()
    assert "Configuration problem in config.yaml" in at.error[0].value
    assert "daily_loss_limit" in at.error[0].value


@pytest.mark.parametrize("form", ["empty.db", "sqlite:///empty.db"])
def test_db_argument_takes_a_path_or_a_url(workdir: Path, form: str) -> None:
    """``streamlit run dashboard_continuous_learning.py -- --db FORM``."""
    open_store("sqlite:///empty.db").dispose()
    page = f"from candlewise.dashboard.app import main\nmain(['--db', {form!r}])\n"
    at = AppTest.from_string(page, default_timeout=30).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "sqlite:///empty.db has no signals or trades yet" in at.info[0].value
