"""``python run_paper_trading_validation.py --duration 48``: paper trading in a sandbox, judged
on the phase criteria, written to ``validation_results/<stamp>.json`` and ``.md``.

The sandbox is a database and a models folder of its own (``validation_results/<stamp>/``),
seeded with the main store's 1m candles known at the window start and a copy of the active
models, so that the validation's trades and retrains never mix with a deployment's rows or
models. Phase 1's pre-deployment checks report the newest result.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from candlewise.app.bootstrap import Application, bootstrap
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.metrics import WindowMetrics, window_metrics
from candlewise.deployment.session import Deployment, DeploymentOutcome, DeploymentRequest
from candlewise.deployment.validation import ValidationResult, render_results, validate
from candlewise.market.ingest import ingest_frame
from candlewise.store import candle_store, deployment_store
from candlewise.store.db import open_store
from candlewise.system.logging_setup import get_logger
from candlewise.system.shutdown import StopRequest

log = get_logger("validation")
Out = Callable[[str], None]


def run_paper_validation(
    app: Application,
    symbols: Sequence[str],
    feed: str,
    duration_ms: int,
    speed: float | None,
    out: Out,
    *,
    end_ms: int | None = None,
) -> int:
    """Paper trading over ``[end - duration, end)``; ``end_ms`` defaults to now (a demo ends
    it where its phase 1 starts, so that the two never replay the same simulated hours). A
    simulated feed in real time runs live instead, ``[now, now + duration)``."""
    cfg = app.config
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d_%H%M%S")
    results_dir = Path(cfg.paths.validation_dir)
    sandbox_dir = results_dir / stamp
    now = int(time.time() * 1000) if end_ms is None else end_ms
    start = now - now % MINUTE_MS - duration_ms
    if feed == "simulated" and speed == 1:  # real time: the simulated exchange runs from now on
        start = now - now % MINUTE_MS
    out("=" * 80)
    out("PAPER TRADING VALIDATION")
    out("=" * 80)
    out(f"Symbols: {', '.join(symbols)} | Duration: {duration_ms / 3_600_000:g} hours | "
        f"Feed: {feed}{'' if speed is None else f' x{speed:g}'}")  # fmt: skip
    out(f"Sandbox: {sandbox_dir}/ (its own database and models: nothing touches "
        f"{cfg.database.url})")  # fmt: skip
    sandbox = _sandbox(app, sandbox_dir, symbols, start)
    try:
        request = DeploymentRequest(0, tuple(symbols), feed, duration_ms, speed)
        outcome, deployment = _paper_trade(sandbox, request, now, out)
        result, lines, metrics = _judge(sandbox, outcome, deployment, out)
        report = {
            "kind": "paper_trading_validation",
            "generated_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "symbols": list(symbols),
            "feed": feed,
            "status": outcome.status,
            "window": {"start": ms_to_text(outcome.start_ms), "end": ms_to_text(outcome.end_ms)},
            "metrics": metrics.as_dict(),
            "sandbox": str(sandbox_dir),
            **result.as_dict(),
        }
        _write_report(report, lines, results_dir, stamp, out)
    finally:
        sandbox.close()
    return 0 if result.approved and outcome.status == deployment_store.COMPLETED else 1


def _sandbox(app: Application, folder: Path, symbols: Sequence[str], start: int) -> Application:
    """The validation's own application: a database seeded with the main store's 1m candles
    before ``start`` and a copy of the active models, under the same config otherwise."""
    cfg = app.config
    store = open_store(f"sqlite:///{folder / 'validation.db'}")
    models = folder / "models"
    if Path(cfg.paths.models_dir).is_dir():  # none trained yet: the sandbox starts learning
        shutil.copytree(cfg.paths.models_dir, models, dirs_exist_ok=True)
    with app.store.connect() as conn:
        for symbol in symbols:
            frame = candle_store.load_frame(conn, symbol, "1m", end_ms=start)
            source = candle_store.latest_source(conn, symbol) or "replay"
            if not frame.empty:
                ingest_frame(store, frame, symbol, "1m", source)
    sandbox_cfg = cfg.model_copy(
        update={"paths": cfg.paths.model_copy(update={"models_dir": str(models)})}
    )
    return bootstrap(sandbox_cfg, secrets=app.secrets, store=store)


def _paper_trade(
    sandbox: Application, request: DeploymentRequest, now: int, out: Out
) -> tuple[DeploymentOutcome, Deployment]:
    with StopRequest() as stop:
        deployment = Deployment.prepare(sandbox, request, now_ms=now, stop=stop)
        out(f"Paper trading {', '.join(request.symbols)} from "
            f"{ms_to_text(deployment.started_ms)} UTC...")  # fmt: skip
        return deployment.run(), deployment


def _judge(
    sandbox: Application, outcome: DeploymentOutcome, deployment: Deployment, out: Out
) -> tuple[ValidationResult, list[str], WindowMetrics]:
    """The phase criteria on the window played, printed and stored with the deployment."""
    with sandbox.store.connect() as conn:
        metrics = window_metrics(
            conn, deployment.symbols, outcome.start_ms, outcome.end_ms,
            max_drawdown_percent=deployment.engine.drawdown.max_drawdown_percent,
        )  # fmt: skip
    result = validate(metrics, sandbox.config.deployment.validation)
    lines = render_results(result, "PAPER TRADING VALIDATION RESULTS")
    for line in lines:
        out(line)
    with sandbox.store.begin() as conn:
        deployment_store.finish(
            conn, outcome.deployment_id, outcome.status, verdict=result.verdict,
            criteria_met=result.criteria_met, criteria=result.as_dict(),
        )  # fmt: skip
    if outcome.status != deployment_store.COMPLETED:
        out(f"Stopped early ({outcome.status}): the result covers "
            f"{ms_to_text(outcome.start_ms)} to {ms_to_text(outcome.end_ms)} UTC only")  # fmt: skip
    return result, lines, metrics


def _write_report(
    report: dict[str, Any], lines: list[str], results_dir: Path, stamp: str, out: Out
) -> None:
    json_path = results_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    md_path = results_dir / f"{stamp}.md"
    md_path.write_text(_markdown(report, lines))
    out(f"Results: {json_path} and {md_path}")


def _markdown(report: dict, lines: list[str]) -> str:  # type: ignore[type-arg]
    m = report["metrics"]
    window = report["window"]
    return "\n".join(
        [
            f"# Paper trading validation: {report['verdict']}",
            "",
            f"- Symbols: {', '.join(report['symbols'])} (feed: {report['feed']})",
            f"- Window: {window['start']} to {window['end']} UTC ({report['status']})",
            f"- Trades: {m['trades']} ({m['wins']} won), P&L ${m['pnl']:,.2f}",
            f"- Max drawdown {m['max_drawdown_percent']:.2f}%, error rate "
            f"{100 * m['error_rate']:.2f}%, {m['transitions_per_hour']:.2f} mode transitions/hour",
            "",
            "```",
            *lines,
            "```",
            "",
        ]
    )
