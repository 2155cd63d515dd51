"""A project folder filled by a real simulated phase 1, shared by the monitor, report and
dashboard tests: simulated history, models trained by ``--train-missing``, then
``deploy_production.py --phase 1`` for the last simulated hours at ``--speed max``.

The config trades from 51 % so that a short window still closes trades, retrains and mode
transitions; the figures the tests check are recomputed from the store, never hard-coded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "BTC/USDT"
HOURS = 8
#: Phase 1 requires an approved 48-hour paper-trading validation; these projects have none.
NO_VALIDATION = ("--force", "--reason", "test project: no paper-trading validation")

CONFIG = """\
symbols: [BTC/USDT]
continuous_learning:
  confidence: {trading_threshold: 0.51, hysteresis: 0.005}
timeframes:
  intervals:
    - {interval: 1m, weight: 0.10}
    - {interval: 5m, weight: 0.45}
    - {interval: 15m, weight: 0.30}
    - {interval: 1h, weight: 0.15}
deployment: {health_check_minutes: 60}
"""


def build_phase1_project(root: Path) -> Path:
    """Fill ``root`` (the current directory of every command) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG)
    exe = Path(sys.executable).with_name("candlewise")
    subprocess.run([str(exe), "data", "simulate", "--symbols", SYMBOL, "--days", "10"],
                   cwd=root, check=True, capture_output=True, timeout=180)  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy_production.py"), "--phase", "1", "--symbol", SYMBOL,
         "--duration", f"{HOURS}h", "--speed", "max", "--train-missing", *NO_VALIDATION],
        cwd=root, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    if done.returncode not in (0, 1):  # APPROVED or REJECTED: both leave a filled store
        raise RuntimeError(f"phase 1 failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (root / "phase1_stdout.txt").write_text(done.stdout)
    return root
