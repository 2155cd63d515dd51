"""The guide's pre-deployment checks, run against the real store, model files and feed.

This module is an adapter (it reads the database, the model files and may reach the exchange
for ``data.feed: binance``). Each check returns a :class:`CheckResult`: the guide's line when it
passes (``✓ Database integrity: OK``), otherwise a ``✗`` line plus what failed and the exact
command that fixes it. The five checks, in the guide's order:

1. database integrity: SQLite's ``PRAGMA quick_check`` and the schema at the newest migration
   (on PostgreSQL only the schema revision);
2. models: the active model of every configured timeframe loads (present, readable, built for
   the current features);
3. historical data: the candles stored for the symbol (all timeframes), with at least
   :func:`candlewise.training.first_training.candles_needed` 1m candles to warm up and train on;
4. configuration: the loaded config is valid and the symbol is one of its ``symbols``;
5. data provider: the feed the deployment will read can be planned (for Binance this loads the
   exchange's markets, the guide's "Test API connectivity") and continues the stored history.

:func:`check_paper_validation` tells whether ``validation_results/`` holds an approved paper-
trading validation of at least 48 hours (the guide's prerequisite): a line for the pre-checks
output, not one of the five; phase 1 refuses to start without it unless ``--force --reason``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from candlewise.config.app_config import AppConfig
from candlewise.config.loader import ConfigError
from candlewise.config.secrets import Secrets
from candlewise.core.errors import UserError
from candlewise.core.symbols import symbol_problem
from candlewise.core.timestamps import text_to_ms
from candlewise.deployment.validation import APPROVED, RULE
from candlewise.features.spec import FEATURE_SPEC
from candlewise.market.feed_factory import plan_feed
from candlewise.market.ingest import check_source
from candlewise.signals.calibration_file import calibration_path
from candlewise.store import candle_store
from candlewise.store.db import safe_url, sqlite_path
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.first_training import candles_needed

TRAIN_SCRIPT = "python src/multi_currency_system.py --train"
VALIDATION_SCRIPT = "python run_paper_trading_validation.py --duration 48"
#: The guide's prerequisite: "48-hour validation passed".
MIN_VALIDATION_HOURS = 48
#: How many quick_check lines a failure shows.
_SHOWN_PROBLEMS = 3


@dataclass(frozen=True)
class CheckResult:
    name: str
    """database, models, history, configuration, provider (or paper_validation)."""
    ok: bool
    line: str
    """``✓ ...`` as the guide prints it, or ``✗ ...`` naming what failed."""
    problem: str | None = None
    fix: str | None = None
    """The command or edit that fixes it."""
    note: str | None = None
    """Something worth knowing that does not fail the check."""

    def detail_lines(self) -> list[str]:
        """The lines printed under a check's line: problem, fix, note (indented)."""
        lines = []
        if self.problem:
            lines.append(f"    {self.problem}")
        if self.fix:
            lines.append(f"    Fix: {self.fix}")
        if self.note:
            lines.append(f"    Note: {self.note}")
        return lines


def _symbols(symbols: str | Sequence[str]) -> list[str]:
    return [symbols] if isinstance(symbols, str) else list(symbols)


def _failed(name: str, line: str, problem: str, fix: str | None) -> CheckResult:
    return CheckResult(name, False, f"✗ {line}", problem, fix)


# --- 1. database ------------------------------------------------------------------------------


_RESTORE = (
    "restore the newest backup with 'candlewise restore' (it backs up the current files first)"
)
_DB_FAILED = "Database integrity: FAILED"


def check_database(store: Engine) -> CheckResult:
    """``✓ Database integrity: OK``: quick_check (SQLite) and the schema at head."""
    from candlewise.store.migrate import current_revision

    url = str(store.url)
    try:
        damage = _quick_check(store)
        if damage is not None:
            return damage
        current = current_revision(store)
    except (DBAPIError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return _failed(
            "database",
            _DB_FAILED,
            f"cannot read {safe_url(url)}: {reason}",
            _RESTORE + " or check database.url in config.yaml",
        )
    return _check_revision(url, current)


def _quick_check(store: Engine) -> CheckResult | None:
    """SQLite's ``PRAGMA quick_check``: the failure it reports, None when it says ok (or the
    store is not SQLite)."""
    if store.dialect.name != "sqlite":
        return None
    with store.connect() as conn:
        rows = [
            text
            for row in conn.exec_driver_sql("PRAGMA quick_check").scalars()
            for text in str(row).splitlines()
            if text and not text.startswith("*** in database")
        ]
    if rows == ["ok"]:
        return None
    shown = "; ".join(rows[:_SHOWN_PROBLEMS])
    more = f" (+{len(rows) - _SHOWN_PROBLEMS} more)" if len(rows) > _SHOWN_PROBLEMS else ""
    path = sqlite_path(str(store.url))
    inspect = f"; inspect: sqlite3 {path} 'PRAGMA integrity_check;'" if path else ""
    return _failed("database", _DB_FAILED, f"PRAGMA quick_check: {shown}{more}", _RESTORE + inspect)


def _check_revision(url: str, current: str | None) -> CheckResult:
    """The schema at this candlewise's head revision, or what to do about it."""
    from alembic.script import ScriptDirectory  # alembic is heavy: import on use

    from candlewise.store.migrate import alembic_config, head_revision

    head = head_revision()
    if current == head:
        return CheckResult("database", True, "✓ Database integrity: OK")
    if current is None:
        return _failed(
            "database",
            _DB_FAILED,
            f"{safe_url(url)} has no schema (no migration applied)",
            "create it with 'candlewise db upgrade'",
        )
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(current) is not None
    except Exception:  # alembic raises its own errors for an unknown revision
        known = False
    if not known:
        return _failed(
            "database",
            _DB_FAILED,
            f"schema revision {current} is newer than this candlewise knows (newest: {head})",
            "upgrade candlewise to the version that migrated this database",
        )
    return _failed(
        "database",
        _DB_FAILED,
        f"schema at revision {current}, this candlewise needs {head}",
        "migrate it with 'candlewise db upgrade' (back it up first with 'candlewise backup')",
    )


# --- 2. models --------------------------------------------------------------------------------


def check_models(cfg: AppConfig, store: Engine, symbols: str | Sequence[str]) -> CheckResult:
    """``✓ All models exist (6 timeframes)``: every configured timeframe's active model loads."""
    names = _symbols(symbols)
    timeframes = cfg.timeframes.names
    registry = ModelRegistry(store, cfg.paths.models_dir, cfg.models.keep_versions)
    missing: dict[str, list[str]] = {}
    for symbol in names:
        for tf in timeframes:
            if registry.load_active(symbol, tf, FEATURE_SPEC.fingerprint) is None:
                missing.setdefault(symbol, []).append(tf)
    uncalibrated = [s for s in names if not calibration_path(cfg.paths.models_dir, s).is_file()]
    n = len(timeframes)
    if not missing:
        line = f"✓ All models exist ({n} timeframes)"
        if len(names) > 1:
            line = f"✓ All models exist ({len(names)} symbols × {n} timeframes)"
        note = None
        if uncalibrated:
            note = (
                f"no signal calibration for {', '.join(uncalibrated)}: its signals stay "
                "uncalibrated and never reach TRADING mode; a full training fits one ("
                + "; ".join(f"'{TRAIN_SCRIPT} --symbol {s}'" for s in uncalibrated)
                + ")"
            )
        return CheckResult("models", True, line, note=note)
    total = sum(len(v) for v in missing.values())
    problem = "; ".join(f"{s} {', '.join(tfs)}: missing or unusable" for s, tfs in missing.items())
    commands = [
        f"'{TRAIN_SCRIPT} --symbol {s}" + (f" --interval {tfs[0]}'" if len(tfs) == 1 else "'")
        for s, tfs in missing.items()
    ]
    fix = f"train them with {' and '.join(commands)}, or deploy with --train-missing"
    if len(names) == 1:
        line = f"Models missing: {total} of {n} timeframes ({', '.join(missing[names[0]])})"
    else:
        line = f"Models missing: {total} of {len(names) * n} ({len(missing)} symbols)"
    return _failed("models", line, problem, fix)


# --- 3. historical data -----------------------------------------------------------------------


def check_history(cfg: AppConfig, store: Engine, symbols: str | Sequence[str]) -> CheckResult:
    """``✓ Historical data: 12,345 candles``: all timeframes counted, enough 1m to train on."""
    names = _symbols(symbols)
    need = candles_needed()
    with store.connect() as conn:
        total = sum(candle_store.count(conn, s) for s in names)
        minutes = {s: candle_store.count(conn, s, "1m") for s in names}
    short = {s: n for s, n in minutes.items() if n < need}
    suffix = f" ({len(names)} symbols)" if len(names) > 1 else ""
    if not short:
        return CheckResult("history", True, f"✓ Historical data: {total:,} candles{suffix}")
    days = max(30, math.ceil(need / 1440) + 1)
    problem = "; ".join(
        f"{s}: {n:,} 1m candles stored, at least {need:,} needed" for s, n in short.items()
    )
    fixes = []
    for s in short:
        download = f"'candlewise data download --symbol {s} --timeframe 1m --days {days}'"
        simulate = f"'candlewise data simulate --symbols {s} --days {days}'"
        first, second = (
            (simulate, download) if cfg.data.feed == "simulated" else (download, simulate)
        )
        fixes.append(f"{first} (or {second})")
    return _failed(
        "history",
        f"Historical data: {total:,} candles{suffix}, not enough 1m history",
        problem,
        "get them with " + "; ".join(fixes),
    )


# --- 4. configuration -------------------------------------------------------------------------

_EDIT = "edit config.yaml and check it with 'candlewise config check'"


def check_configuration(
    cfg: AppConfig, symbols: str | Sequence[str], secrets: Secrets | None = None
) -> CheckResult:
    """``✓ Configuration valid``: the config loaded (validated) and knows the symbols.

    With ``secrets``, ``live_trading.mode: live`` also needs the Binance keys.
    """
    problems: list[str] = []
    fixes: list[str] = []
    for symbol in _symbols(symbols):
        bad = symbol_problem(symbol)
        if bad:
            problems.append(f"malformed symbol {symbol!r}: {bad}")
            fixes.append("give the symbol as BASE/QUOTE, e.g. --symbol BTC/USDT")
        elif symbol not in cfg.symbols:
            problems.append(f"{symbol} is not in symbols ({', '.join(cfg.symbols)})")
            fixes.append(f"add '- {symbol}' under symbols: in config.yaml")
    if secrets is not None and cfg.live_trading.mode == "live":
        absent = [k for k in ("BINANCE_API_KEY", "BINANCE_API_SECRET") if not secrets.get(k)]
        if absent:
            problems.append(f"live_trading.mode is live but {' and '.join(absent)} not set")
            fixes.append("put the keys in .env (see .env.example) or set live_trading.mode: paper")
    if not problems:
        return CheckResult("configuration", True, "✓ Configuration valid")
    return _failed("configuration", "Configuration invalid", "; ".join(problems), "; ".join(fixes))


def config_error_check(error: ConfigError) -> CheckResult:
    """The configuration check of a config that did not load (every problem, one ``; `` each)."""
    return _failed(
        "configuration",
        "Configuration invalid",
        f"{error.source}: " + "; ".join(str(p) for p in error.problems),
        _EDIT,
    )


# --- 5. data provider -------------------------------------------------------------------------


def check_provider(
    cfg: AppConfig,
    store: Engine,
    symbols: str | Sequence[str],
    *,
    now_ms: int,
    feed: str | None = None,
    duration_ms: int | None = None,
    files: Sequence[Path] = (),
) -> CheckResult:
    """``✓ Data provider initialized``: the deployment's feed plan can be built and its
    candles may continue the stored ones (same source). Nothing is streamed; for Binance the
    exchange's markets are loaded once (network)."""
    names = _symbols(symbols)
    chosen = feed or cfg.data.feed
    duration = cfg.deployment.phase1_duration_ms if duration_ms is None else duration_ms
    line = f"Data provider not initialized ({chosen} feed)"
    try:
        plan = plan_feed(
            chosen, cfg, names, engine=store, now_ms=now_ms, duration_ms=duration, speed=None,
            files=files,
        )  # fmt: skip
        source = getattr(plan.feed, "source", chosen)
        if not (chosen == "replay" and not (files or cfg.data.replay_files)):
            # a feed whose candles get stored must continue the same price history (replaying
            # the store itself stores nothing)
            with store.connect() as conn:
                for symbol in names:
                    check_source(conn, symbol, source)
    except UserError as exc:
        return _failed("provider", line, exc.message, exc.hint)
    except Exception as exc:  # a feed that cannot start, for whatever reason, fails the check
        return _failed(
            "provider",
            line,
            f"{type(exc).__name__}: {exc}",
            "check data.feed and exchange settings in config.yaml and the network",
        )
    return CheckResult("provider", True, "✓ Data provider initialized")


# --- all five ---------------------------------------------------------------------------------


def run_checks(
    cfg: AppConfig,
    store: Engine,
    symbols: str | Sequence[str],
    *,
    now_ms: int,
    feed: str | None = None,
    duration_ms: int | None = None,
    files: Sequence[Path] = (),
    secrets: Secrets | None = None,
) -> list[CheckResult]:
    """The five checks in the guide's order; each runs even when an earlier one failed (a
    check that raises unexpectedly fails with the exception named, it never aborts the rest)."""
    checks: list[tuple[str, str, Callable[[], CheckResult]]] = [
        ("database", "Database integrity", lambda: check_database(store)),
        ("models", "Models", lambda: check_models(cfg, store, symbols)),
        ("history", "Historical data", lambda: check_history(cfg, store, symbols)),
        ("configuration", "Configuration", lambda: check_configuration(cfg, symbols, secrets)),
        (
            "provider",
            "Data provider",
            lambda: check_provider(
                cfg, store, symbols, now_ms=now_ms, feed=feed, duration_ms=duration_ms, files=files
            ),
        ),
    ]
    results = []
    for name, label, check in checks:
        try:
            results.append(check())
        except Exception as exc:
            results.append(
                _failed(name, f"{label}: check failed", f"{type(exc).__name__}: {exc}", None)
            )
    return results


def summary_line(results: Sequence[CheckResult]) -> str:
    return f"Pre-deployment checks: {sum(r.ok for r in results)}/{len(results)} passed"


def render_checks(results: Sequence[CheckResult], extra: Sequence[CheckResult] = ()) -> list[str]:
    """``Running pre-deployment checks...`` through the closing rule, as the guide prints it;
    a failed check's problem and fix follow its line; ``extra`` lines (the paper-trading
    validation) come after the five, outside the count."""
    lines = ["Running pre-deployment checks..."]
    for result in (*results, *extra):
        lines.append(result.line)
        lines.extend(result.detail_lines())
    return [*lines, RULE, summary_line(results), RULE]


# --- paper-trading validation -----------------------------------------------------------------


def check_paper_validation(directory: str | Path) -> CheckResult:
    """Whether the newest readable ``*.json`` in ``directory`` holds an approved validation
    (top-level ``"verdict": "APPROVED"``, as ``ValidationResult.as_dict`` writes it).

    The newest result decides: an older approval does not cover a system whose last
    validation was rejected. Files that are not JSON objects are skipped.
    """
    folder = Path(directory)
    files = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    run_it = f"run '{VALIDATION_SCRIPT}'"
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or "verdict" not in data:
            continue
        met = data.get("criteria_met")
        total = data.get("criteria_total", 5)
        counted = f", {met}/{total} criteria" if isinstance(met, int) else ""
        hours = _window_hours(data)
        if data["verdict"] == APPROVED and hours is not None and hours >= MIN_VALIDATION_HOURS:
            return CheckResult(
                "paper_validation",
                True,
                f"✓ Paper trading validation: APPROVED ({path.as_posix()}{counted})",
            )
        if data["verdict"] == APPROVED:
            covered = "an unknown window" if hours is None else f"{hours:g} hours"
            return CheckResult(
                "paper_validation",
                False,
                f"⚠️  Paper trading validation: APPROVED on {covered} only "
                f"({path.as_posix()}{counted})",
                f"the guide asks for a {MIN_VALIDATION_HOURS}-hour validation; the newest one "
                f"covers {covered}",
                run_it,
            )
        return CheckResult(
            "paper_validation",
            False,
            f"⚠️  Paper trading validation: {data['verdict']} ({path.as_posix()}{counted})",
            "the newest paper-trading validation was not approved",
            f"fix what failed, then {run_it}",
        )
    return CheckResult(
        "paper_validation",
        False,
        f"⚠️  Paper trading validation: none found in {folder.as_posix()}/",
        "no approved paper-trading validation result",
        run_it,
    )


def _window_hours(data: dict[str, Any]) -> float | None:
    """Hours of candle time a result covers (its ``window``), None when it does not say."""
    window = data.get("window")
    try:
        return (text_to_ms(window["end"]) - text_to_ms(window["start"])) / 3_600_000
    except (TypeError, KeyError, ValueError):
        return None
