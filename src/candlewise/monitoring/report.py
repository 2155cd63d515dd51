"""``monitor_production.py --report --hours N``: a JSON report of the last N hours (before the
reference moment, see ``status``) and its printed summary.

The JSON is keyed for the guide's ``jq '.symbols'`` (an object keyed by symbol) and
``jq '.alerts'`` (a list: the alerts stored in the window, the failed criteria of the
deployment's verdict and this report's own findings, each with its ``source``). Symbols are
ranked by P&L and flagged with the guide's underperformance signs (win rate < 50 %, excessive
retraining, high error rate), the thresholds coming from the configuration.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from candlewise.config.app_config import AppConfig
from candlewise.core.timestamps import ms_to_text, text_to_ms
from candlewise.deployment.metrics import HOUR_MS, window_metrics
from candlewise.deployment.validation import ValidationResult
from candlewise.monitoring.figures import mode_share, realised_sharpe
from candlewise.monitoring.screen import fmt_duration, fmt_money, fmt_pct
from candlewise.monitoring.status import (
    Scope,
    mode_at,
    read_scope,
    starting_equity,
    symbol_window,
)
from candlewise.store.tables import (
    alerts,
    confidence_history,
    health_checks,
    learning_states,
    retraining_history,
)

RULE = "=" * 80
_SOURCES = {"alerts": "stored", "verdict": "failed verdict criteria", "report": "report findings"}
DEFINITIONS = {
    "window": "(start, end] in candle time; end is now while a deployment runs, else the last "
    "stored event",
    "pnl": "realised P&L of the trades closed in the window (trade_outcomes), in the quote "
    "currency; pnl_percent is over the account's equity at the window's start",
    "win_rate": "wins / closed trades in the window",
    "max_drawdown_percent": "deepest mark-to-market drawdown of the account (equity_history of "
    "the runs that traded the symbol) sampled in the window; shared by symbols of one account",
    "sharpe": "annualised, from the symbol's realised P&L per hour (per day beyond 3 days)",
    "mode_share": "share of time in each mode between the symbol's first and last signal of "
    "the window",
    "error_rate": "system error_log rows / 1m candles handled (the health checks' definition)",
    "feed_data_errors": "bad data from the exchange (skipped klines, rejected candles), "
    "backfilled over REST; counted apart, not in error_rate",
    "candle_uptime": "share of the window's minutes whose 1m candle was handled",
    "flags": "the guide's underperformance signs: win rate below deployment.validation.win_rate, "
    "retrains per day above monitoring.excessive_retrains_per_day, error rate at or above "
    "deployment.health.error_rate",
}


def build_report(
    conn: Connection,
    cfg: AppConfig,
    *,
    now_ms: int,
    hours: float,
    symbol: str | None = None,
    database: str = "",
) -> dict[str, Any] | None:
    """The report as JSON-able data; None when the store holds no event at all."""
    scope = read_scope(conn, cfg, now_ms, symbol)
    if scope.empty:
        return None
    end = scope.reference_ms
    start = end - int(hours * HOUR_MS)
    names = list(scope.symbols)
    per_symbol = {s: _symbol_report(conn, cfg, s, start, end, hours) for s in names}
    ranking = sorted(names, key=lambda s: (-per_symbol[s]["pnl"], -per_symbol[s]["win_rate"], s))
    for rank, s in enumerate(ranking, 1):
        per_symbol[s]["rank"] = rank
    flags = [f for s in ranking for f in _flags(cfg, s, per_symbol[s], hours)]
    lo, hi = ms_to_text(start), ms_to_text(end)
    return {
        "generated_at": scope.now,
        "timezone": "UTC",
        "period_hours": hours,
        "window": {"start": lo, "end": hi, "ends_at": _ends_at(scope)},
        "database": database,
        "deployment": _deployment(scope),
        "system": _system(conn, scope, per_symbol, start, end, now_ms),
        "symbols": {s: per_symbol[s] for s in ranking},
        "ranking": [
            {
                "rank": per_symbol[s]["rank"],
                "symbol": s,
                "pnl": per_symbol[s]["pnl"],
                "win_rate": per_symbol[s]["win_rate"],
                "trades": per_symbol[s]["trades"],
                "flags": [f["sign"] for f in flags if f["symbol"] == s],
            }
            for s in ranking
        ],
        "flags": flags,
        "underperforming": sorted({f["symbol"] for f in flags}),
        "alerts": _alerts(conn, names, lo, hi)
        + _verdict_alerts(scope)
        + [
            {
                "time": scope.now,
                "level": "WARNING",
                "kind": f["sign"],
                "symbol": f["symbol"],
                "message": f["message"],
                "source": "report",
            }
            for f in flags
        ],
        "health_checks": _health(conn, lo, hi),
        "definitions": DEFINITIONS,
    }


def write_report(report: dict[str, Any], reports_dir: Path) -> Path:
    """``reports_dir/report_<YYYYmmdd_HHMMSS>.json`` (a suffix if that second is taken)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d_%H%M%S")
    path = reports_dir / f"report_{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = reports_dir / f"report_{stamp}_{n}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path


def summary_lines(report: dict[str, Any], path: Path | None = None) -> list[str]:
    w, system = report["window"], report["system"]
    lines = [
        RULE,
        f"PRODUCTION REPORT - last {report['period_hours']:g}h: {w['start']} → {w['end']} UTC",
        RULE,
        f"Window ends at {w['ends_at']}.",
        f"System: {len(system['active_symbols'])} active symbol(s) | uptime "
        f"{system['uptime'] or 'not running'} | error rate {fmt_pct(system['error_rate'])} | "
        f"{system['retrains']['total']} retrains | {system['mode_transitions']['total']} mode "
        f"transitions ({system['mode_transitions']['per_hour']:.2f}/hour, busiest symbol)",
        "Symbols, ranked by P&L:",
    ]
    d = report["deployment"]
    if d is not None and d.get("validation_override"):
        forced = (
            f"⚠️  Deployment {d['id']} (phase {d['phase']}) ran without an approved "
            f"paper-trading validation (--force): {d['validation_override']}"
        )
        lines.insert(-1, forced)
    for name, s in report["symbols"].items():
        sharpe = "n/a" if s["sharpe"] is None else f"{s['sharpe']:.2f}"
        trading = s["mode_share"].get("TRADING") if s["mode_share"] else None
        share = "n/a" if trading is None else f"{100 * trading:.0f}%"
        win = fmt_pct(s["win_rate"]) if s["trades"] else "n/a"
        lines.append(
            f"  {s['rank']}. {name}: P&L {fmt_money(s['pnl'])} ({s['pnl_percent']:.2f}%) | "
            f"Win Rate {win} ({s['wins']}/{s['trades']}) | Max Drawdown "
            f"{s['max_drawdown_percent']:.2f}% | Sharpe {sharpe} | TRADING {share} | "
            f"retrains {s['retrains']['total']}"
        )
    if not report["symbols"]:
        lines.append("  (none)")
    lines.append("Underperformance signs:")
    lines += [f"  ⚠ {f['symbol']}: {f['message']}" for f in report["flags"]] or ["  none"]
    sources = Counter(a["source"] for a in report["alerts"])
    parts = [f"{sources[k]} {label}" for k, label in _SOURCES.items() if sources[k]]
    count = len(report["alerts"])
    lines.append(f"Alerts: {count} ({', '.join(parts)})" if parts else "Alerts: none")
    h = report["health_checks"]
    failed = ", ".join(f"{k} {v['failed']}" for k, v in h["by_check"].items() if v["failed"])
    lines.append(
        f"Health checks: {h['total']} results, {h['failed']} failed"
        + (f" ({failed})" if failed else "")
    )
    if path is not None:
        lines.append(f"Report: {path}")
    return lines


def _ends_at(scope: Scope) -> str:
    if scope.live:
        return "now (a deployment is running)"
    return f"the last stored event, {scope.reference} UTC (no deployment running)"


def _deployment(scope: Scope) -> dict[str, Any] | None:
    d = scope.deployment
    if d is None:
        return None
    return {"id": d.id, "phase": d.phase, "symbols": list(d.symbols), "status": d.status,
            "running": d.running, "started_at": d.started_at, "ended_at": d.ended_at,
            "verdict": d.verdict, "validation_override": d.validation_override}  # fmt: skip


def _system(
    conn: Connection,
    scope: Scope,
    per_symbol: dict[str, dict[str, Any]],
    start: int,
    end: int,
    now_ms: int,
) -> dict[str, Any]:
    names = list(scope.symbols)
    metrics = window_metrics(conn, names, start, end)
    uptime_s = None
    if scope.live and scope.deployment is not None:
        uptime_s = max(0, (now_ms - text_to_ms(scope.deployment.started_at)) // 1000)
    reasons: Counter[str] = Counter()
    for s in per_symbol.values():
        reasons.update(s["retrains"]["by_reason"])
    return {
        "deployment_running": scope.live,
        "uptime_seconds": uptime_s,
        "uptime": None if uptime_s is None else fmt_duration(uptime_s),
        "candle_uptime": _r(metrics.uptime),
        "error_rate": _r(metrics.error_rate),
        "errors": metrics.errors,
        "feed_data_errors": metrics.feed_data_errors,
        "candle_events": metrics.events,
        "active_symbols": list(scope.active_symbols),
        "symbols": names,
        "trades": metrics.trades,
        "wins": metrics.wins,
        "win_rate": _r(metrics.win_rate),
        "pnl": _r(metrics.pnl),
        "max_drawdown_percent": _r(
            max((s["max_drawdown_percent"] for s in per_symbol.values()), default=0.0)
        ),
        "retrains": {
            "total": sum(s["retrains"]["total"] for s in per_symbol.values()),
            "accepted": sum(s["retrains"]["accepted"] for s in per_symbol.values()),
            "by_reason": dict(sorted(reasons.items())),
        },
        "mode_transitions": {
            "total": sum(s["mode_transitions"] for s in per_symbol.values()),
            "per_hour": _r(metrics.transitions_per_hour),
        },
    }


def _symbol_report(
    conn: Connection, cfg: AppConfig, symbol: str, start: int, end: int, hours: float
) -> dict[str, Any]:
    lo, hi = ms_to_text(start), ms_to_text(end)
    m = symbol_window(conn, symbol, start, end)
    equity = starting_equity(conn, cfg, symbol, start)
    r = retraining_history.c
    in_window = (r.symbol == symbol, r.triggered_at > lo, r.triggered_at <= hi)
    by_reason = dict(
        conn.execute(
            select(r.trigger_reason, func.count()).where(*in_window).group_by(r.trigger_reason)
        ).all()
    )
    accepted = conn.execute(select(func.count()).where(*in_window, r.success.is_(True))).scalar()
    total = sum(by_reason.values())
    s = learning_states.c
    transitions = conn.execute(
        select(func.count()).where(s.symbol == symbol, s.timestamp > lo, s.timestamp <= hi)
    ).scalar_one()
    c = confidence_history.c
    count, mean, low, high = conn.execute(
        select(func.count(), func.avg(c.confidence_score), func.min(c.confidence_score),
               func.max(c.confidence_score))
        .where(c.symbol == symbol, c.timestamp > lo, c.timestamp <= hi)
    ).one()  # fmt: skip
    mode, since = mode_at(conn, symbol, hi)
    return {
        "trades": m.trades,
        "wins": m.wins,
        "losses": m.trades - m.wins,
        "win_rate": _r(m.win_rate),
        "pnl": _r(m.pnl),
        "pnl_percent": _r(100 * m.pnl / equity if equity else 0.0),
        "starting_equity": _r(equity),
        "max_drawdown_percent": _r(m.max_drawdown_percent),
        "sharpe": _r(realised_sharpe(conn, symbol, start, end, equity)),
        "mode": mode,
        "mode_since": since,
        "mode_share": mode_share(conn, symbol, lo, hi),
        "mode_transitions": int(transitions),
        "retrains": {
            "total": total,
            "accepted": int(accepted or 0),
            "by_reason": {str(k): int(v) for k, v in sorted(by_reason.items())},
            "per_day": _r(total / (hours / 24)),
        },
        "confidence": {
            "signals": int(count),
            "mean": _r(mean),
            "min": _r(low),
            "max": _r(high),
        },
        "error_rate": _r(m.error_rate),
        "errors": m.errors,
        "feed_data_errors": m.feed_data_errors,
        "candle_events": m.events,
    }


def _flags(cfg: AppConfig, symbol: str, s: dict[str, Any], hours: float) -> list[dict[str, Any]]:
    """The guide's underperformance signs (Performance Tuning, step 2)."""
    flags = []
    win_min = cfg.deployment.validation.win_rate
    if s["trades"] and s["win_rate"] < win_min:
        flags.append(_flag(symbol, "win_rate_below_threshold", s["win_rate"], win_min,
                           f"win rate {fmt_pct(s['win_rate'])} < {100 * win_min:g}% "
                           f"({s['wins']}/{s['trades']} trades)"))  # fmt: skip
    per_day, limit = s["retrains"]["per_day"], cfg.monitoring.excessive_retrains_per_day
    if per_day > limit:
        flags.append(_flag(symbol, "excessive_retraining", per_day, limit,
                           f"excessive retraining: {per_day:.2f} retrains/day > {limit:g}/day "
                           f"({s['retrains']['total']} in {hours:g}h)"))  # fmt: skip
    error_max = cfg.deployment.health.error_rate
    if s["error_rate"] >= error_max:
        flags.append(_flag(symbol, "high_error_rate", s["error_rate"], error_max,
                           f"high error rate: {fmt_pct(s['error_rate'])} >= {100 * error_max:g}% "
                           f"({s['errors']} errors / {s['candle_events']} candles)"))  # fmt: skip
    return flags


def _flag(symbol: str, sign: str, value: float, threshold: float, msg: str) -> dict[str, Any]:
    return {"symbol": symbol, "sign": sign, "value": value, "threshold": threshold,
            "message": msg}  # fmt: skip


def _alerts(conn: Connection, names: list[str], lo: str, hi: str) -> list[dict[str, Any]]:
    a = alerts.c
    rows = conn.execute(
        select(a.timestamp, a.level, a.kind, a.symbol, a.message, a.delivered)
        .where(a.timestamp > lo, a.timestamp <= hi, a.symbol.in_(names) | a.symbol.is_(None))
        .order_by(a.timestamp, a.id)
    ).all()
    return [
        {"time": str(t), "level": level, "kind": kind, "symbol": sym, "message": msg,
         "delivered": bool(delivered), "source": "alerts"}
        for t, level, kind, sym, msg, delivered in rows
    ]  # fmt: skip


def _verdict_alerts(scope: Scope) -> list[dict[str, Any]]:
    """The criteria the deployment's validation failed: what the guide's ``jq '.alerts'``
    after a failed phase 1 looks for."""
    d = scope.deployment
    if d is None or not d.criteria:
        return []
    result = ValidationResult.from_dict(json.loads(d.criteria))
    level = "CRITICAL" if not result.approved else "WARNING"
    return [
        {"time": d.ended_at or scope.now, "level": level, "kind": f"phase{d.phase}_validation",
         "symbol": ",".join(d.symbols), "source": "verdict",
         "message": f"Phase {d.phase} {d.verdict}: {c.line}"}
        for c in result.failed()
    ]  # fmt: skip


def _health(conn: Connection, lo: str, hi: str) -> dict[str, Any]:
    h = health_checks.c
    rows = conn.execute(
        select(h.timestamp, h.check_name, h.value, h.threshold, h.passed, h.action, h.detail)
        .where(h.timestamp > lo, h.timestamp <= hi)
        .order_by(h.timestamp, h.id)
    ).all()
    by_check: dict[str, dict[str, Any]] = {}
    failures = []
    for t, name, value, threshold, passed, action, detail in rows:
        entry = {"time": str(t), "check": name, "value": _r(value), "threshold": threshold,
                 "passed": bool(passed), "action": action, "detail": detail}  # fmt: skip
        summary = by_check.setdefault(name, {"results": 0, "failed": 0, "last": None})
        summary["results"] += 1
        summary["failed"] += not passed
        summary["last"] = entry
        if not passed:
            failures.append(entry)
    return {
        "total": len(rows),
        "failed": len(failures),
        "by_check": by_check,
        "failures": failures,
    }


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)
