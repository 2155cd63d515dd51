"""Phases 1 and 3 as the guide prints them: banner, pre-deployment checks, components, the
deployment with scheduled health checks (stored, logged, alerted; the drawdown limit rolls
back), and phase 1's validation (stored in ``deployments`` and a JSON report)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from candlewise.alerts.dispatcher import AlertDispatcher
from candlewise.alerts.model import Alert
from candlewise.app.bootstrap import Application
from candlewise.config.app_config import AppConfig
from candlewise.core.clock import parse_duration_ms, parse_speed
from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.health import (
    HealthMetrics,
    HealthThresholds,
    HealthTracker,
    evaluate_health,
)
from candlewise.deployment.metrics import HOUR_MS, window_metrics
from candlewise.deployment.phase3_gate import Phase3Approval, approve_phase3
from candlewise.deployment.progress import StatusLine, feed_line
from candlewise.deployment.session import Deployment, DeploymentOutcome, DeploymentRequest
from candlewise.deployment.validation import (
    feed_data_errors_line,
    render_phase_validation,
    validate,
)
from candlewise.store import deployment_store
from candlewise.store.tables import health_checks
from candlewise.system.logging_setup import get_logger
from candlewise.system.shutdown import StopRequest

RULE = "=" * 80
Out = Callable[[str], None]
log = get_logger("deployment")


@dataclass(frozen=True)
class PhaseOptions:
    phase: int
    symbol: str | None = None
    duration: str | None = None
    feed: str | None = None
    speed: str = "1"
    approve: bool = False
    force_reason: str | None = None
    stagger: str | None = None
    train_missing: bool = False
    confirm: Callable[[str], bool] | None = None
    """Asks the operator (a terminal's y/N) when phase 3 lacks ``--approve``; None: never ask."""


def human_duration(ms: int) -> str:
    """The guide speaks in hours ("24 hours", "48 hours"); days only past three of them."""
    day, hour = 86_400_000, 3_600_000
    if ms > 3 * day and ms % day == 0:
        return f"{ms // day} days"
    for unit, size in (("hour", hour), ("minute", 60_000)):
        if ms % size == 0 and ms >= size:
            n = ms // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{ms / 60_000:g} minutes"


def run_phase(app: Application, opt: PhaseOptions, out: Out) -> int:
    cfg = app.config
    app.start_logging()
    try:
        speed = parse_speed(opt.speed)
        duration_ms = parse_duration_ms(opt.duration or cfg.deployment.phase1_duration)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    feed = opt.feed or cfg.data.feed
    if speed is None and feed == "binance":
        raise UserError(
            "--speed max replays history; a live Binance feed runs in real time",
            "drop --speed, or use --feed simulated / replay",
        )
    if opt.phase == 1:
        assert opt.symbol is not None
        return _phase1(app, opt, out, feed, speed, duration_ms)
    return _phase3(app, opt, out, feed, speed, opt.duration and duration_ms)


def _say(out: Out, line: str) -> None:
    out(line)
    if line.strip() and set(line) != {"="}:
        log.info("%s", line)


def _phase1(
    app: Application, opt: PhaseOptions, out: Out, feed: str, speed: float | None, duration: int
) -> int:
    symbol = opt.symbol or ""
    for line in (
        RULE,
        "PHASE 1: SINGLE SYMBOL DEPLOYMENT",
        RULE,
        f"Symbol: {symbol}",
        f"Duration: {human_duration(duration)}",
        feed_line(feed, speed),
        f"Start Time: {datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M:%S')}",
        RULE,
        "",
    ):
        _say(out, line)
    checks = _pre_checks(
        app, [symbol], feed, out, opt.train_missing, duration_ms=duration,
        force_reason=opt.force_reason,
    )  # fmt: skip
    if not checks:
        return 2
    override = None if checks is True else opt.force_reason
    request = DeploymentRequest(1, (symbol,), feed, duration, speed, validation_override=override)
    outcome, deployment = _deploy(app, request, out, [symbol], announce_monitoring=duration)
    if outcome.status != deployment_store.COMPLETED:
        return _stopped(app, outcome, deployment, out)
    return _validate(app, outcome, deployment, out)


def _phase3(
    app: Application,
    opt: PhaseOptions,
    out: Out,
    feed: str,
    speed: float | None,
    duration: int | None,
) -> int:
    cfg = app.config
    symbols = list(cfg.symbols)
    if speed is None and duration is None and feed == "simulated":  # it starts now: no end
        raise UserError(
            "--speed max plays a phase 3 as fast as it can from now on, and it has no end",
            "add --duration (e.g. --duration 24h), or drop --speed to run in real time",
        )
    approval = Phase3Approval(opt.approve, opt.force_reason, opt.confirm)
    with app.store.begin() as conn:
        phase1 = approve_phase3(conn, symbols, approval)
    for line in (
        RULE,
        "PHASE 3: FULL PRODUCTION ROLLOUT",
        RULE,
        f"Deploying to {len(symbols)} symbols:",
        *(f"  - {s}" for s in symbols),
        feed_line(feed, speed),
        RULE,
    ):
        _say(out, line)
    if not _pre_checks(app, symbols, feed, out, train_missing=True, quiet=True):
        return 2
    stagger = _stagger_ms(opt.stagger, cfg.deployment.stagger_ms)
    carried = phase1.symbols if phase1 is not None else ()  # its account goes on in phase 3
    request = DeploymentRequest(
        3, tuple(symbols), feed, duration, speed, from_now=True, continues=carried
    )
    outcome, deployment = _deploy(
        app, request, out, symbols, carry_over=True, stagger_ms=stagger, announce_monitoring=None
    )
    if outcome.status != deployment_store.COMPLETED:
        return _stopped(app, outcome, deployment, out)
    with app.store.begin() as conn:  # a phase 3 given a --duration ends like this
        deployment_store.finish(conn, outcome.deployment_id, deployment_store.COMPLETED)
    _say(out, f"Phase 3 completed at {ms_to_text(outcome.end_ms)} UTC (the --duration ended).")
    return 0


def _stagger_ms(text: str | None, default: int) -> int:
    if text is None:
        return default
    if text.strip().lower() in {"0", "0s", "0m", "0h", "0d"}:
        return 0
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise UserError(f"--stagger: {exc}") from None


def _pre_checks(
    app: Application,
    symbols: Sequence[str],
    feed: str,
    out: Out,
    train_missing: bool,
    quiet: bool = False,
    duration_ms: int | None = None,
    force_reason: str | None = None,
) -> bool | str:
    """The five checks (False: one failed) and, unless ``quiet`` (phase 3), the approved paper-
    trading validation phase 1 requires: without one it refuses (UserError) unless forced,
    then returns ``"forced"``."""
    from candlewise.deployment.checks import (
        MIN_VALIDATION_HOURS,
        check_paper_validation,
        render_checks,
        run_checks,
    )

    validation = None if quiet else check_paper_validation(app.config.paths.validation_dir)
    refused = validation is not None and not validation.ok and force_reason is None
    if train_missing and not refused:  # no training for a deployment that will not start
        known_at = None
        if feed == "simulated" and duration_ms is not None:  # train on what precedes the window
            now = int(time.time() * 1000)
            known_at = now - now % MINUTE_MS - duration_ms
        _train_missing(app, symbols, out, known_at)
    results = run_checks(
        app.config,
        app.store,
        symbols,
        now_ms=int(time.time() * 1000),
        feed=feed,
        duration_ms=duration_ms,
        secrets=app.secrets,
    )
    failed = [r for r in results if not r.ok]
    if not quiet or failed:
        for line in render_checks(results, [] if validation is None else [validation]):
            _say(out, line)
    if failed and not refused:
        return False
    if validation is not None and not validation.ok:
        if refused:
            raise UserError(
                f"phase 1 needs an approved {MIN_VALIDATION_HOURS}-hour paper-trading validation "
                f"(the guide's prerequisite): {validation.problem}",
                f'{validation.fix}; or deploy without one with --force --reason "..." '
                "(recorded with the deployment and shown in its reports)",
            )
        _say(out, f"⚠️  Deploying without an approved paper-trading validation (--force): "
                  f"{force_reason}")  # fmt: skip
    if not quiet:
        _say(out, "")
    return "forced" if validation is not None and not validation.ok else True


def _train_missing(
    app: Application, symbols: Sequence[str], out: Out, known_at_ms: int | None = None
) -> None:
    from candlewise.features.spec import FEATURE_SPEC
    from candlewise.training.first_training import calibrate_signals, train_symbol

    cfg = app.config
    registry = app.registry
    for symbol in symbols:
        missing = [
            tf
            for tf in cfg.timeframes.names
            if registry.load_active(symbol, tf, FEATURE_SPEC.fingerprint) is None
        ]
        if not missing:
            continue
        _say(out, f"Training {symbol} ({', '.join(missing)})...")
        outcomes = train_symbol(app.store, registry, cfg, symbol, missing, known_at_ms=known_at_ms)
        for outcome in outcomes:
            _say(out, f"  {'✓' if outcome.ok else '✗'} {outcome.symbol} {outcome.timeframe}")
        calibrate_signals(app.store, cfg, symbol, known_at_ms=known_at_ms)


def _deploy(
    app: Application,
    request: DeploymentRequest,
    out: Out,
    symbols: Sequence[str],
    *,
    carry_over: bool = False,
    stagger_ms: int = 0,
    announce_monitoring: int | None,
) -> tuple[DeploymentOutcome, Deployment]:
    cfg = app.config
    _say(out, "Initializing system components...")
    with (
        StopRequest() as stop,
        AlertDispatcher(cfg.alerts, app.secrets, app.store) as alerts,
        _metrics_endpoint(cfg, symbols, out) as metrics,
    ):
        monitor = HealthMonitor(cfg, alerts)

        def on_minute(deployment: Deployment, now: int) -> None:
            monitor.on_minute(deployment, now)
            status.on_minute(now)
            if metrics is not None:
                metrics.observe(deployment.engine, now, deployment.plan.clock.now_ms())

        deployment = Deployment.prepare(
            app, request, now_ms=int(time.time() * 1000), stop=stop, on_minute=on_minute
        )
        deployment.engine.alert = alerts.raise_alert
        status = StatusLine(
            deployment.engine, deployment.symbols, deployment.started_ms, request.speed,
            deployment.plan.clock.now_ms, lambda line: _say(out, line),
        )  # fmt: skip
        _say(out, "✓ Components initialized")
        _announce_symbols(cfg, deployment, symbols, out, carry_over, stagger_ms, stop)
        _announce_start(symbols, out, announce_monitoring)
        outcome = deployment.run()
    return outcome, deployment


def _announce_symbols(
    cfg: AppConfig,
    deployment: Deployment,
    symbols: Sequence[str],
    out: Out,
    carry_over: bool,
    stagger_ms: int,
    stop: Callable[[], bool],
) -> None:
    """The guide's per-symbol lines (``--stagger`` apart); a carried symbol is not redeployed."""
    for i, symbol in enumerate(symbols):
        if carry_over and symbol in deployment.carried:  # continued, not redeployed
            _say(out, f"✓ {symbol} already deployed (Phase {deployment.carried[symbol]})")
            continue
        if i and stagger_ms and not stop():
            time.sleep(stagger_ms / 1000)
        _say(out, f"Deploying {symbol}...")
        for tf in cfg.timeframes.names:
            _say(out, f"  ✓ Subscribed to {symbol} @ {tf}")
        _say(out, f"✅ {symbol} deployed successfully")
    _say(out, "")


def _announce_start(symbols: Sequence[str], out: Out, monitoring_ms: int | None) -> None:
    """Phase 1 names what it monitors and for how long; phase 3 announces the full rollout."""
    if monitoring_ms is not None:
        what = ", ".join(symbols)
        _say(
            out,
            f"✓ Deployment started. Monitoring {what} for {human_duration(monitoring_ms)}...",
        )
    else:
        _say(out, RULE)
        _say(out, f"✅ FULL ROLLOUT COMPLETE - {len(symbols)} symbols active")
        _say(out, RULE)
        _say(out, "Continuous monitoring active. Press Ctrl+C to stop.")


@contextmanager
def _metrics_endpoint(cfg: AppConfig, symbols: Sequence[str], out: Out) -> Iterator[Any]:
    """The optional Prometheus endpoint (monitoring.prometheus), up for the deployment's life."""
    if not cfg.monitoring.prometheus.enabled:
        yield None
        return
    from candlewise.deployment.prometheus import MetricsEndpoint  # local: prometheus_client

    endpoint = MetricsEndpoint(cfg.monitoring.prometheus, symbols)
    endpoint.start()
    _say(out, f"✓ Metrics at {endpoint.url}")
    try:
        yield endpoint
    finally:
        endpoint.stop()


class HealthMonitor:
    """The scheduled health checks: every ``deployment.health_check_minutes`` of candle time,
    from the stored events (a checkpoint first, so the store holds everything)."""

    def __init__(self, cfg, alerts: AlertDispatcher) -> None:  # type: ignore[no-untyped-def]
        self.cfg = cfg
        self.alerts = alerts
        self.every_ms = cfg.deployment.health_check_minutes * MINUTE_MS
        self.thresholds = HealthThresholds.from_config(cfg)
        self.tracker = HealthTracker()

    def on_minute(self, deployment: Deployment, now: int) -> None:
        if (now - deployment.started_ms) % self.every_ms or now == deployment.started_ms:
            return
        deployment.runner.checkpoint(now)
        start = deployment.started_ms
        engine = deployment.engine
        with deployment.store.connect() as conn:
            since_start = window_metrics(
                conn,
                deployment.symbols,
                start,
                now,
                max_drawdown_percent=engine.drawdown.max_drawdown_percent,
            )
            last_hour = window_metrics(conn, deployment.symbols, max(start, now - HOUR_MS), now)
        results = evaluate_health(
            HealthMetrics.from_windows(since_start, last_hour), self.thresholds
        )
        stamp = ms_to_text(now)
        with deployment.store.begin() as conn:
            conn.execute(
                insert(health_checks),
                [
                    {"deployment_id": deployment.deployment_id, "timestamp": stamp, **r.as_dict()}
                    for r in results
                ],
            )
        for line in self.tracker.record(results):
            log.info("%s", line)
        at = datetime.fromtimestamp(now / 1000, tz=UTC)
        for r in results:
            if r.passed or r.warning is None:
                continue
            level = "CRITICAL" if r.action == "rollback" else "WARNING"
            text = r.warning.split(": ", 1)[-1] if ": " in r.warning else r.warning
            self.alerts.raise_alert(Alert(level, r.name, text, at=at))
            if r.action == "rollback":
                deployment.rollback(now, r.detail)


def _stopped(app: Application, outcome: DeploymentOutcome, deployment: Deployment, out: Out) -> int:
    with app.store.begin() as conn:
        deployment_store.finish(conn, outcome.deployment_id, outcome.status)
    open_positions = len(deployment.engine.broker.book)
    if outcome.status == deployment_store.ROLLED_BACK:
        _say(out, f"Deployment rolled back at {ms_to_text(outcome.end_ms)} UTC: {outcome.reason}")
        _say(out, "All positions closed. Data preserved in database for analysis.")
        return 1
    _say(
        out,
        f"Deployment stopped at {ms_to_text(outcome.end_ms)} UTC; "
        f"{open_positions} open position(s) kept. Run the same command to continue.",
    )
    return 130


def _validate(
    app: Application, outcome: DeploymentOutcome, deployment: Deployment, out: Out
) -> int:
    cfg = app.config
    engine = deployment.engine
    with app.store.connect() as conn:
        metrics = window_metrics(
            conn,
            deployment.symbols,
            outcome.start_ms,
            outcome.end_ms,
            max_drawdown_percent=engine.drawdown.max_drawdown_percent,
        )
    result = validate(metrics, cfg.deployment.validation)
    for line in render_phase_validation(result, 1):
        _say(out, line)
    _say(out, feed_data_errors_line(metrics.feed_data_errors))
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d_%H%M%S")
    path = Path(cfg.paths.reports_dir) / f"phase1_{stamp}.json"
    report = {
        "phase": 1,
        "deployment_id": outcome.deployment_id,
        "symbols": deployment.symbols,
        "window": {"start": ms_to_text(outcome.start_ms), "end": ms_to_text(outcome.end_ms)},
        "metrics": metrics.as_dict(),
        "validation_override": deployment.request.validation_override,
        **result.as_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    with app.store.begin() as conn:
        deployment_store.finish(
            conn,
            outcome.deployment_id,
            deployment_store.COMPLETED,
            verdict=result.verdict,
            criteria_met=result.criteria_met,
            criteria=result.as_dict(),
            report_path=str(path),
        )
    _say(out, f"Report: {path}")
    return 0 if result.approved else 1
