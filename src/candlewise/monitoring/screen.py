"""The guide's monitor screen as text: a pure function of the read model (``status``), so the
exact lines are unit-tested; colour is added on top by :func:`styled` without changing them.
"""

from __future__ import annotations

from rich.text import Text

from candlewise.monitoring.status import Activity, MonitorStatus, SymbolStatus, SystemStatus

WIDE = "=" * 100
LAG_NOTE_S = 180
"""A live engine's candle time further behind now than this is shown (a replay at --speed N)."""
START_COMMAND = "python deploy_production.py --phase 1 --symbol BTC/USDT"


def render_screen(status: MonitorStatus, refresh_s: int | None) -> list[str]:
    """The screen's lines. ``refresh_s`` None: printed once (``--once``)."""
    system = status.system
    scope = system.scope
    lines = [WIDE, f"PRODUCTION MONITOR - {scope.now} UTC", WIDE, ""]
    if scope.empty:
        lines += _empty_lines(system, refresh_s)
    else:
        lines += _system_lines(system)
        for symbol in status.symbols:
            lines += _symbol_lines(symbol, system.window_hours)
    lines += [WIDE, _footer(system, refresh_s)]
    return lines


def _empty_lines(system: SystemStatus, refresh_s: int | None) -> list[str]:
    where = system.database or "the database"
    lines = [
        f"No deployment is running and {where} holds no trading events yet:",
        "nothing to monitor (figures would all be zero).",
        f"Start a deployment in another terminal: {START_COMMAND}",
    ]
    if refresh_s is not None:
        lines.append(f"This screen checks again every {refresh_s}s.")
    return [*lines, ""]


def _system_lines(system: SystemStatus) -> list[str]:
    scope = system.scope
    lines = ["📊 SYSTEM STATUS"]
    if not scope.live:
        d = scope.deployment
        if d is None:
            last = "no deployment recorded, only backtest runs"
        elif d.ended_at:
            ended = d.status.replace("_", " ")
            last = f"last: phase {d.phase} #{d.id}, {ended} at {d.ended_at} UTC"
        else:
            last = f"last: phase {d.phase} #{d.id}, marked {d.status} but its process is gone"
        lines += [
            f"  ⚠ No deployment running ({last})",
            f"  Figures as of the last stored event: {scope.reference} UTC",
        ]
    uptime = fmt_duration(system.uptime_s) if system.uptime_s is not None else "not running"
    lines += [
        f"  Uptime: {uptime}",
        f"  Error Rate (1h): {fmt_pct(system.error_rate_1h)}",
        f"  Active Symbols: {len(scope.active_symbols)}",
    ]
    if system.feed_data_errors_1h:  # the guide's lines stay as they are when there are none
        lines.append(
            f"  Feed Data Errors (1h): {system.feed_data_errors_1h} (bad exchange data, "
            "backfilled; not in the error rate)"
        )
    if scope.live and scope.candle_lag_s > LAG_NOTE_S:
        lag = fmt_duration(scope.candle_lag_s)
        lines.append(f"  Candle time: {scope.candle_time} UTC ({lag} behind now: replaying)")
    lines.append("")
    return lines


def _symbol_lines(s: SymbolStatus, hours: float) -> list[str]:
    lines = [WIDE, f"📈 {s.symbol}", WIDE]
    if s.mode is None:
        lines += ["  🎯 Mode: — (no signal yet)", ""]
    else:
        confidence = "—" if s.confidence is None else fmt_pct(s.confidence)
        in_mode = "—" if s.time_in_mode_s is None else fmt_duration(s.time_in_mode_s)
        lines += [
            f"  🎯 Mode: {s.mode}",
            f"  Confidence: {confidence}",
            f"  Time in mode: {in_mode}",
            "",
        ]
    mark = "✓" if s.pnl > 0 else "✗" if s.trades else "–"
    win_rate = fmt_pct(s.win_rate) if s.trades else "n/a"
    lines += [
        f"  💰 Performance ({hours:g}h)",
        f"    {mark} P&L: {fmt_money(s.pnl)} ({s.pnl_percent:.2f}%)",
        f"    Win Rate: {win_rate} ({s.wins}/{s.trades} trades)",
        f"    Max Drawdown: {s.max_drawdown_percent:.2f}%",
        "",
        "  🎯 Recent Activity",
    ]
    lines += [f"    {activity_line(a)}" for a in s.activity] or ["    (no trades or retrains yet)"]
    return [*lines, ""]


def activity_line(a: Activity) -> str:
    """``[11:58] Trade: BUY ✓ WIN ($45.20)``, ``[11:45] Retrain: ✓ loss_immediate → 82.45%``."""
    at = f"[{a.at[11:16]}]"
    if a.kind == "trade":
        verdict = "✓ WIN" if a.ok else "✗ LOSS"
        return f"{at} Trade: {a.label} {verdict} ({fmt_money(a.amount or 0.0)})"
    if a.ok is None:
        return f"{at} Retrain: ⚙ {a.label} (in progress)"
    result = "—" if a.amount is None else fmt_pct(a.amount)
    if a.ok:
        return f"{at} Retrain: ✓ {a.label} → {result}"
    return f"{at} Retrain: ✗ {a.label} → {result} (rejected, previous model kept)"


def _footer(system: SystemStatus, refresh_s: int | None) -> str:
    refresh = f"{refresh_s}s" if refresh_s is not None else "off (--once)"
    return (
        f"Last Update: {system.scope.now[11:]} | Refresh: {refresh} | "
        f"Alerts Sent: {system.alerts_sent}"
    )


def fmt_duration(seconds: int) -> str:
    """``5m 0s``, ``15m 30s``, ``2h 5m 0s``, ``1d 0h 0m 0s`` (the guide's form)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def fmt_pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def fmt_money(amount: float) -> str:
    """``$45.20``, ``-$12.30``, ``$1,234.56``."""
    sign = "-" if amount < 0 and round(amount, 2) != 0 else ""
    return f"{sign}${abs(amount):,.2f}"


_STYLES = (("✓", "green"), ("✗", "red"), ("⚠", "yellow"), ("⚙", "cyan"))


def styled(lines: list[str]) -> Text:
    """The same text, coloured: marks green/red/yellow, section titles bold."""
    text = Text()
    for line in lines:
        part = Text(line)
        if line.startswith(("PRODUCTION MONITOR", "📊", "📈")):
            part.stylize("bold")
        for mark, style in _STYLES:
            start = line.find(mark)
            if start >= 0:
                part.stylize(style, start, len(line))
        text.append_text(part)
        text.append("\n")
    return text
