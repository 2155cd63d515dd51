"""``candlewise demo`` (what ``make demo`` runs): the guide's flow on the embedded defaults.

Simulated history for BTC/USDT, its six models trained on the candles known before the
validation window, a paper-trading validation (in its own sandbox) of the simulated day before
phase 1's, phase 1 for the last simulated day at ``--speed max`` with its verdict (forced, and
saying why, when the validation is not the approved 48 hours the guide requires), then the
guide's SQL queries, the monitor's screen and a 24-hour report on the result. No network, no
keys. A demo replays the last simulated day: run again, it first moves the previous demo's
database and models to ``backups/`` (nothing is lost), since replaying the same hours into the
same store would count their trades twice.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text

from candlewise.cli import data_cmd
from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt
from candlewise.store.db import safe_url

SYMBOL = "BTC/USDT"
#: The 1d model needs 231 days of history; the window and a margin come on top.
HISTORY_DAYS = 240
SUMMARY_QUERIES = (
    "SELECT symbol, COUNT(*) FROM candles GROUP BY symbol;",
    "SELECT COUNT(*), AVG(validation_confidence) FROM retraining_history "
    "WHERE triggered_at > datetime('now', '-6 hours');",
    "SELECT trigger_reason, COUNT(*) FROM retraining_history "
    "WHERE triggered_at > datetime('now', '-6 hours') GROUP BY trigger_reason;",
    "SELECT AVG(confidence_score), MAX(confidence_score) FROM confidence_history "
    "WHERE symbol = 'BTC/USDT' AND timestamp > datetime('now', '-24 hours');",
    "SELECT * FROM learning_states ORDER BY id DESC LIMIT 5;",
    "SELECT SUM(pnl) FROM positions WHERE status = 'closed';",
)


def demo(
    hours: Annotated[
        float, typer.Option("--hours", min=1, max=240, help="Simulated hours of phase 1.")
    ] = 24,
    config: ConfigOpt = None,
) -> None:
    """Train, validate and run phase 1 on the simulated market; then the guide's queries."""
    from candlewise.deployment.paper_validation import run_paper_validation
    from candlewise.deployment.phase import PhaseOptions, run_phase

    ctx = AppContext(config)
    cfg = ctx.config
    ctx.start_logging()
    started = time.monotonic()
    duration = f"{hours:g}h"
    duration_ms = int(hours * 3_600_000)
    console.rule(f"[bold]candlewise demo: {SYMBOL} on the simulated market")
    console.print(f"Database: {safe_url(cfg.database.url)} | models: {cfg.paths.models_dir}/")
    _set_aside_previous_demo(ctx)

    console.rule("1. Simulated history")
    days = max(HISTORY_DAYS, 232 + math.ceil(2 * hours / 24))  # 1d warm-up + both windows
    data_cmd.simulate(symbols=SYMBOL, days=days, seed=None, config=config, db=None)

    console.rule("2. Models, trained on what precedes the validation window")
    now = int(time.time() * 1000)
    window_start = now - now % 60_000 - duration_ms  # phase 1 replays [window_start, now)
    validation_start = window_start - duration_ms  # the validation the hours before
    _train(ctx, validation_start)

    console.rule(f"3. Paper-trading validation ({duration} before phase 1's, simulated, "
                 "--speed max)")  # fmt: skip
    run_paper_validation(
        ctx.app, [SYMBOL], "simulated", duration_ms, None, console.print, end_ms=window_start
    )

    console.rule(f"4. Phase 1 ({duration}, simulated, --speed max)")
    reason = _force_reason(ctx)
    options = PhaseOptions(phase=1, symbol=SYMBOL, duration=duration, feed="simulated",
                           speed="max", force_reason=reason)  # fmt: skip
    code = run_phase(ctx.app, options, console.print)
    if code == 2:
        raise typer.Exit(2)

    console.rule("5. The guide's queries on the result")
    _guide_queries(ctx)
    console.rule("6. The guide's monitor and 24-hour report (python monitor_production.py)")
    _monitor_and_report(config)
    console.rule()
    console.print(
        f"Demo done in {time.monotonic() - started:.0f} s. Next: the guide's commands, e.g. "
        "streamlit run dashboard_continuous_learning.py, "
        "python deploy_production.py --phase 3 --approve (after an APPROVED phase 1), "
        "tail -f logs/production_deployment.log"
    )


def _guide_queries(ctx: AppContext) -> None:
    with ctx.engine.connect() as conn:
        for query in SUMMARY_QUERIES:
            console.print(f'[bold]sqlite3 data/trading.db "{query}"', markup=True)
            for row in conn.execute(text(query)):
                console.print("|".join("" if v is None else str(v) for v in row), markup=False)


def _monitor_and_report(config: Path | None) -> None:
    from candlewise.cli.monitor_cmd import monitor

    monitor(symbol=SYMBOL, once=True, config=config)
    monitor(report=True, hours="24", config=config)


def _force_reason(ctx: AppContext) -> str | None:
    """Phase 1 needs an approved 48-hour validation; a demo validates its own (shorter) window,
    so it deploys with ``--force --reason`` when that is not enough, and says so."""
    from candlewise.deployment.checks import check_paper_validation

    check = check_paper_validation(ctx.config.paths.validation_dir)
    if check.ok:
        return None
    reason = f"demo on the simulated market: {check.problem}"
    console.print(
        f"No approved 48-hour paper-trading validation: the demo runs phase 1 with --force "
        f'--reason "{reason}"',
        markup=False,
    )
    return reason


def _train(ctx: AppContext, known_at_ms: int) -> None:
    from candlewise.training.first_training import calibrate_signals, train_symbol

    cfg = ctx.config
    registry = ctx.registry
    outcomes = train_symbol(
        ctx.engine, registry, cfg, SYMBOL, cfg.timeframes.names, known_at_ms=known_at_ms
    )
    for o in outcomes:
        console.print(f"{'✓' if o.ok else '✗'} {o.symbol} {o.timeframe}" + (
            f": {o.problem}" if o.problem else ""))  # fmt: skip
    calibrate_signals(ctx.engine, cfg, SYMBOL, known_at_ms=known_at_ms)


def _set_aside_previous_demo(ctx: AppContext) -> None:
    """A store that already holds a deployment is moved to backups/ with its models."""
    import shutil
    from pathlib import Path

    from candlewise.store import backup as backups

    path = ctx.db_path
    if not path.exists():
        return
    with ctx.engine.connect() as conn:
        try:
            held = conn.execute(text("SELECT COUNT(*) FROM deployments")).scalar_one()
        except Exception:  # an older schema: nothing deployed
            held = 0
    if not held:
        return
    paths = ctx.config.paths
    result = backups.backup(path, Path(paths.models_dir), Path(paths.backups_dir))
    ctx.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(paths.models_dir, ignore_errors=True)
    console.print(
        f"The previous demo's database and models are in {result.folder} "
        "(candlewise restore brings them back); starting afresh."
    )
