"""End to end: the real server on 127.0.0.1, the page in headless Chromium (Debian's, driven by
Playwright; no browser is ever downloaded), and the guide's pre-deployment check 8."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dashboard.expected import latest_mode, latest_trade
from tests.dashboard.server import REPO, SCRIPT, STREAMLIT, free_port, healthy, stop, wait_healthy
from tests.phase1_project import SYMBOL

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

CHROMIUM = Path("/usr/bin/chromium")
PANELS = [
    "Mode",
    "Confidence trend",
    "News sentiment",
    "Retraining history",
    "Multi-timeframe signals",
    "Equity and drawdown",
    "Recent trades",
]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":  # CI must not go green without the browser test
            pytest.fail(
                "CI=true but /usr/bin/chromium is absent (scripts/install_system_packages.sh)"
            )
        pytest.skip("/usr/bin/chromium absent (scripts/install_system_packages.sh installs it)")
    return CHROMIUM


def test_dashboard_in_chromium(phase1_project: Path, chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc = subprocess.Popen(
        [
            str(STREAMLIT),
            "run",
            str(SCRIPT),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=phase1_project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    log = ""
    try:
        wait_healthy(port, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(chromium), headless=True, args=["--no-sandbox"]
            )
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{port}/")
                for name in PANELS:
                    page.get_by_role("heading", name=name, exact=True).wait_for()
                page.wait_for_function(  # every chart has drawn, then let the last settle
                    "document.querySelectorAll(\"[data-testid='stVegaLiteChart']\").length >= 4 &&"
                    " [...document.querySelectorAll(\"[data-testid='stVegaLiteChart']\")]"
                    ".every(c => c.querySelector('canvas, svg'))"
                )
                mode = page.locator(".st-key-mode-BTC-USDT [data-testid='stMetricValue']")
                shown_trade = page.locator(".st-key-latest-trade").inner_text()
                mode_text = mode.inner_text().strip()
                assert page.locator("[data-testid='stException']").count() == 0
                time.sleep(1)
                height = page.evaluate(
                    "document.querySelector(\"[data-testid='stMainBlockContainer']\").scrollHeight"
                )
                page.set_viewport_size({"width": 1500, "height": int(height) + 60})
                time.sleep(1.5)  # charts re-layout to the new size
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        if target := os.environ.get("CANDLEWISE_SCREENSHOT"):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, target)
    finally:
        log = stop(proc)
    assert "Traceback" not in log, log
    assert shot.stat().st_size > 50_000
    assert mode_text == latest_mode(phase1_project, SYMBOL)
    exit_time, direction, timeframe, pnl = latest_trade(phase1_project)
    assert f"{SYMBOL} {timeframe} {direction}" in shown_trade
    assert f"exit {exit_time} UTC" in shown_trade
    assert f"P&L {pnl:+.2f} USDT" in shown_trade


def test_guide_check_8_server_starts_and_answers(phase1_project: Path) -> None:
    """``streamlit run dashboard_continuous_learning.py --server.headless true &`` from the
    repository root, ``sleep 5``: the server is still running, and answers (on a free port:
    8501 may be taken)."""
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{STREAMLIT.parent}{os.pathsep}{os.environ['PATH']}",
        "CANDLEWISE_DATABASE_URL": f"sqlite:///{phase1_project / 'data' / 'trading.db'}",
    }
    proc = subprocess.Popen(
        [
            "streamlit",
            "run",
            "dashboard_continuous_learning.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(5)  # the guide's wait; on a loaded machine start-up may take longer
        assert proc.poll() is None  # still running after the guide's 5 s (no crash at start)
        wait_healthy(port, proc, timeout=120)
        assert healthy(port)
    finally:
        log = stop(proc)
    assert f"localhost:{port}" in log or f":{port}" in log, log
