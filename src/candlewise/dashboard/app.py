"""The Streamlit page: sidebar filters, then the panels, redrawn every
``monitoring.dashboard_refresh_seconds`` by a fragment (only the panels rerun, not the page).

Every problem the operator can fix (no config, no database, an empty one) is a message naming
the fix, never a traceback. The store is opened read-only for each redraw and released after
it, so the dashboard holds nothing open between refreshes of a running deployment's database.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from candlewise.config.app_config import AppConfig
from candlewise.config.loader import ConfigError, load_config
from candlewise.dashboard import charts, data
from candlewise.store.db import database_url, safe_url

NEWS_PLACEHOLDER = (
    "No news source is configured: sentiment will appear here once the news sentiment issue "
    "lands. Until then the models' two sentiment features are 0."
)
DATETIME = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")
PERCENT = st.column_config.NumberColumn(format="percent")
TRADE_LIMIT = 100


@dataclass(frozen=True)
class Filters:
    symbols: tuple[str, ...]
    time_range: str
    auto_refresh: bool


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``streamlit run dashboard_continuous_learning.py -- --db URL --config PATH``."""
    parser = argparse.ArgumentParser(prog="dashboard_continuous_learning.py", allow_abbrev=False)
    parser.add_argument("--config", default=None, help="config file (default ./config.yaml)")
    parser.add_argument(
        "--db", default=None, help="database URL or SQLite file path (default: database.url)"
    )
    return parser.parse_known_args(list(argv))[0]


def main(argv: Sequence[str] = ()) -> None:
    st.set_page_config(page_title="candlewise dashboard", page_icon="📈", layout="wide")
    st.title("Continuous learning dashboard")
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        st.error(
            f"Configuration problem in {exc.source}:\n\n"
            + "\n".join(f"- {p}" for p in exc.problems)
        )
        st.info("Fix it (`candlewise config check` explains each line), then reload the page.")
        return
    url = database_url(args.db) if args.db else cfg.database.url
    try:
        engine = data.open_readonly(url)
    except data.StoreUnavailable as exc:
        st.error(f"Cannot open the database {safe_url(url)}: {exc.message}")
        st.info(f"To fill it: {exc.hint}")
        return
    try:
        symbols = data.symbols(engine, cfg.symbols)
    finally:
        engine.dispose()
    if not symbols:
        st.info(f"The database {safe_url(url)} has no signals or trades yet: {data.FILL_HINT}")
        return
    filters = sidebar(symbols, cfg, url)
    every = cfg.monitoring.dashboard_refresh_seconds if filters.auto_refresh else None
    st.fragment(run_every=every)(panels)(url, cfg, filters)


def sidebar(symbols: list[str], cfg: AppConfig, url: str) -> Filters:
    with st.sidebar:
        st.header("Filters")
        chosen = st.multiselect("Symbols", symbols, default=symbols, key="symbols")
        ranges = list(data.TIME_RANGES)
        time_range = st.selectbox("Time range", ranges, index=ranges.index("24h"), key="range")
        auto = st.checkbox(
            f"Auto-refresh every {cfg.monitoring.dashboard_refresh_seconds} s",
            value=True,
            key="auto_refresh",
        )
        st.button("Refresh now", key="refresh")
        st.caption(f"Database: `{safe_url(url)}` (read-only)")
    return Filters(tuple(chosen), time_range, auto)


def panels(url: str, cfg: AppConfig, filters: Filters) -> None:
    """Everything below the title; the auto-refresh reruns only this."""
    try:
        engine = data.open_readonly(url)
    except data.StoreUnavailable as exc:
        st.error(f"Cannot open the database {safe_url(url)}: {exc.message}")
        return
    try:
        _panels(engine, cfg, filters)
    finally:
        engine.dispose()


def _panels(engine: Engine, cfg: AppConfig, filters: Filters) -> None:
    syms = list(filters.symbols)
    end = data.latest_event_time(engine)
    since = data.window_start(end, filters.time_range)
    now = datetime.now(UTC).strftime("%H:%M:%S")
    header = f"Window: {since or 'start'} → {end or '—'} UTC (ends at the latest stored event)"
    deployment = data.latest_deployment(engine)
    if deployment:
        header += (
            f" · Deployment: phase {deployment['phase']} {deployment['symbols']}, "
            f"{deployment['status']}"
            + (f", {deployment['verdict']}" if deployment["verdict"] else "")
        )
    st.caption(f"{header} · Updated {now} UTC")
    if not syms:
        st.warning("No symbol selected: choose at least one in the sidebar.")
        return
    mode_panel(data.mode_status(engine, syms, since))
    left, right = st.columns([3, 2], gap="large")
    with left:
        confidence_panel(engine, cfg, syms, since, end)
    with right:
        timeframe_panel(engine, syms)
    left, right = st.columns([3, 2], gap="large")
    with left:
        equity_panel(engine, since)
    with right:
        st.subheader("News sentiment")
        st.info(NEWS_PLACEHOLDER, icon=":material/newspaper:")
    retraining_panel(engine, syms, since)
    trades_panel(engine, syms, since)


def css_key(name: str) -> str:
    """A widget/container key usable as a CSS class (``st-key-<key>``) by the browser test."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def mode_panel(statuses: list[data.ModeStatus]) -> None:
    st.subheader("Mode")
    for start in range(0, len(statuses), 4):
        for col, s in zip(st.columns(4), statuses[start : start + 4], strict=False):
            with col, st.container(key=css_key(f"mode-{s.symbol}"), border=True):
                signal = (
                    f"{s.direction} {s.confidence:.1%}"
                    if s.confidence is not None
                    else "no signal yet"
                )
                st.metric(
                    s.symbol,
                    s.mode,
                    delta=signal,
                    delta_color="off",
                    delta_arrow="off",
                    help="The symbol's last mode transition (learning_states); "
                    "below it the latest signal's direction and confidence.",
                )
                since = f"since {s.since} UTC" if s.since else "no transition yet"
                st.caption(f"{since} · {s.transitions} transitions in the window")


def confidence_panel(
    engine: Engine, cfg: AppConfig, syms: list[str], since: str | None, end: datetime | None
) -> None:
    st.subheader("Confidence trend")
    conf = cfg.continuous_learning.confidence
    st.caption(
        f"TRADING from {conf.trading_threshold:.1%} (red line); back to LEARNING below "
        f"{conf.trading_threshold - conf.hysteresis:.1%} (hysteresis band, orange)."
    )
    signals = data.confidence_trend(engine, syms, since)
    segments = data.mode_segments(engine, syms, since, end)
    for sym in syms:
        rows = signals[signals["symbol"] == sym]
        if rows.empty:
            st.caption(f"{sym}: no signal in this window.")
            continue
        st.markdown(f"**{sym}**")
        chart = charts.confidence_chart(
            rows, segments[segments["symbol"] == sym], conf.trading_threshold, conf.hysteresis
        )
        st.altair_chart(chart, width="stretch")


def timeframe_panel(engine: Engine, syms: list[str]) -> None:
    st.subheader("Multi-timeframe signals")
    preds = data.timeframe_signals(engine, syms)
    if preds.empty:
        st.caption("No per-timeframe prediction stored yet.")
        return
    order = {tf: i for i, tf in enumerate(charts.TIMEFRAMES)}
    latest = preds[preds["rank"] == 1].sort_values(
        ["symbol", "timeframe"], key=lambda c: c.map(order) if c.name == "timeframe" else c
    )
    columns = ["timeframe", "time", "direction", "confidence", "p_up"]
    st.dataframe(
        latest[(["symbol"] if len(syms) > 1 else []) + columns],
        hide_index=True,
        width="stretch",
        column_config={
            "time": st.column_config.DatetimeColumn("candle", format="MM-DD HH:mm"),
            "confidence": PERCENT,
            "p_up": st.column_config.NumberColumn("P(up)", format="%.3f"),
        },
    )
    st.altair_chart(charts.timeframe_heatmap(preds), width="stretch")


def equity_panel(engine: Engine, since: str | None) -> None:
    st.subheader("Equity and drawdown")
    eq = data.equity(engine, since)
    if eq.empty:
        st.caption("No equity sample in this window (the engine stores one every 5 minutes).")
        return
    a, b, c = st.columns(3)
    a.metric("Equity (USDT)", f"{eq['equity'].iloc[-1]:,.2f}")
    b.metric("Drawdown now", f"{eq['drawdown_percent'].iloc[-1]:.2f} %")
    c.metric("Max drawdown (window)", f"{eq['drawdown_percent'].max():.2f} %")
    st.altair_chart(charts.equity_chart(eq), width="stretch")
    st.caption(f"Engine run {eq['run_id'].iloc[-1]} (each run has its own paper account).")


def retraining_panel(engine: Engine, syms: list[str], since: str | None) -> None:
    st.subheader("Retraining history")
    rt = data.retraining(engine, syms, since)
    if rt.empty:
        st.caption("No retraining in this window.")
        return
    counts = rt["outcome"].value_counts()
    st.caption(
        f"{len(rt)} attempts: {counts.get('accepted', 0)} accepted, "
        f"{counts.get('rejected', 0)} rejected; mean duration {rt['duration_s'].mean():.2f} s."
    )
    st.altair_chart(charts.retrain_timeline(rt), width="stretch")
    table = rt.iloc[::-1].assign(
        versions=[_versions(r) for r in rt.iloc[::-1].itertuples()],
        rejected_reason=rt.iloc[::-1]["rejected_reason"].fillna(""),
    )
    columns = [
        "triggered_at",
        "symbol",
        "timeframe",
        "reason",
        "outcome",
        "duration_s",
        "confidence_before",
        "confidence_after",
        "versions",
        "rejected_reason",
    ]
    st.dataframe(
        table[columns],
        hide_index=True,
        width="stretch",
        column_config={
            "triggered_at": DATETIME,
            "confidence_before": st.column_config.NumberColumn("conf. before", format="percent"),
            "confidence_after": st.column_config.NumberColumn("conf. after", format="percent"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.2f"),
            "rejected_reason": "why rejected",
        },
    )


def _versions(row: object) -> str:
    """``v2 → v3`` for an accepted retrain, ``v2 kept`` for a rejected one."""
    old, new = row.old_version, row.new_version
    old_text = f"v{int(old)}" if pd.notna(old) else "none"
    return f"{old_text} → v{int(new)}" if pd.notna(new) else f"{old_text} kept"


def trade_line(trade: data.Trade) -> str:
    """The "latest trade" line (the browser test compares it with the store)."""
    return (
        f"Latest trade: {trade.symbol} {trade.timeframe} {trade.direction} · entry "
        f"{trade.entry_time} · exit {trade.exit_time} UTC · P&L {trade.pnl:+.2f} USDT "
        f"({trade.pnl_percent:+.2f} %) · {trade.outcome}"
    )


def trades_panel(engine: Engine, syms: list[str], since: str | None) -> None:
    st.subheader("Recent trades")
    latest = data.latest_trade(engine, syms)
    with st.container(key="latest-trade"):
        st.markdown(trade_line(latest) if latest else "No closed trade yet.")
    trades = data.recent_trades(engine, syms, since, TRADE_LIMIT)
    if trades.empty:
        st.caption("No trade closed in this window.")
        return
    wins = int((trades["outcome"] == "WIN").sum())
    shown = f"The {len(trades)} most recent" if len(trades) == TRADE_LIMIT else str(len(trades))
    st.caption(
        f"{shown} trades closed in the window, newest first: {wins} won, P&L "
        f"{trades['pnl'].sum():+.2f} USDT."
    )
    st.dataframe(
        trades.drop(columns=["quantity", "fees"]),
        hide_index=True,
        width="stretch",
        column_config={
            "exit_time": DATETIME,
            "entry_time": DATETIME,
            "confidence": PERCENT,
            "pnl": st.column_config.NumberColumn("P&L (USDT)", format="%+.2f"),
            "pnl_percent": st.column_config.NumberColumn("P&L %", format="%+.2f"),
            "entry_price": st.column_config.NumberColumn("entry", format="%.2f"),
            "exit_price": st.column_config.NumberColumn("exit", format="%.2f"),
            "exit_reason": "exit reason",
        },
    )
