"""Altair charts of the dashboard, built from ``data`` frames (no streamlit, no store access).

Times are UTC: every temporal axis uses a UTC scale so the page reads like the store and the
logs whatever the browser's time zone; tooltips show the store's own text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from candlewise.core.timeframes import TIMEFRAMES

MODE_COLORS = alt.Scale(domain=["TRADING", "LEARNING"], range=["#2ca02c", "#9e9e9e"])
OUTCOME_COLORS = alt.Scale(
    domain=["accepted", "rejected", "running"], range=["#2ca02c", "#ff7f0e", "#1f77b4"]
)
TIME_FMT = "%Y-%m-%d %H:%M"


def _x_time(field: str, title: str | None = None) -> alt.X:
    return alt.X(
        f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=alt.Axis(format="%d %H:%M")
    )


def _text_time(df: pd.DataFrame, col: str, name: str = "when") -> pd.DataFrame:
    return df.assign(**{name: df[col].dt.strftime(TIME_FMT)})


def confidence_chart(
    signals: pd.DataFrame, segments: pd.DataFrame, threshold: float, hysteresis: float
) -> alt.LayerChart:
    """One symbol's signal confidence over the window, with the threshold line, the hysteresis
    band below it (between the two the mode does not change) and TRADING/LEARNING shading.

    Points, not a line: a minute holds one signal per timeframe closing in it, and joining them
    would draw a spike at every 5m/15m/1h close."""
    signals = _text_time(signals, "time")
    shading = (
        alt.Chart(segments)
        .mark_rect(opacity=0.12)
        .encode(
            x=_x_time("start"),
            x2="end:T",
            color=alt.Color("mode:N", scale=MODE_COLORS, title="mode"),
        )
    )
    band_df = pd.DataFrame({"low": [threshold - hysteresis], "high": [threshold]})
    band = (
        alt.Chart(band_df)
        .mark_rect(color="#ff7f0e", opacity=0.25)
        .encode(
            y="low:Q",
            y2="high:Q",
            tooltip=[
                alt.Tooltip("low:Q", format=".1%", title="exit"),
                alt.Tooltip("high:Q", format=".1%", title="entry"),
            ],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#d62728", strokeDash=[6, 4], size=2)
        .encode(y="threshold:Q")
    )
    points = (
        alt.Chart(signals)
        .mark_circle(size=14, opacity=0.8)
        .encode(
            x=_x_time("time", "time (UTC)"),
            y=alt.Y(
                "confidence:Q",
                title="signal confidence",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".0%"),
            ),
            color=alt.Color("mode:N", scale=MODE_COLORS, title="mode"),
            tooltip=["when", alt.Tooltip("confidence:Q", format=".2%"), "direction", "mode"],
        )
    )
    return alt.layer(shading, band, rule, points).properties(height=260)


def equity_chart(equity: pd.DataFrame) -> alt.VConcatChart:
    """Equity above, drawdown (hanging down from 0 %) below, on one time axis."""
    equity = _text_time(equity, "time")
    top = (
        alt.Chart(equity)
        .mark_line(color="#1f77b4")
        .encode(
            x=_x_time("time", None),
            y=alt.Y("equity:Q", title="equity (USDT)", scale=alt.Scale(zero=False)),
            tooltip=["when", alt.Tooltip("equity:Q", format=",.2f")],
        )
        .properties(height=200)
    )
    bottom = (
        alt.Chart(equity)
        .mark_area(color="#d62728", opacity=0.5, line=True)
        .encode(
            x=_x_time("time", "time (UTC)"),
            y=alt.Y("drawdown_percent:Q", title="drawdown (%)", scale=alt.Scale(reverse=True)),
            tooltip=["when", alt.Tooltip("drawdown_percent:Q", format=".2f", title="drawdown %")],
        )
        .properties(height=120)
    )
    return alt.vconcat(top, bottom).resolve_scale(x="shared")


def retrain_timeline(retrains: pd.DataFrame) -> alt.Chart:
    """Each retrain attempt at its trigger time, one row per timeframe, coloured by outcome."""
    retrains = _text_time(retrains, "triggered_at")
    order = [tf for tf in TIMEFRAMES if tf in set(retrains["timeframe"])]
    return (
        alt.Chart(retrains)
        .mark_point(filled=True, size=120)
        .encode(
            x=_x_time("triggered_at", "triggered (UTC)"),
            y=alt.Y("timeframe:N", sort=order, title="model"),
            color=alt.Color("outcome:N", scale=OUTCOME_COLORS),
            shape=alt.Shape("symbol:N"),
            tooltip=[
                "when",
                "symbol",
                "timeframe",
                "reason",
                "outcome",
                alt.Tooltip("duration_s:Q", format=".2f", title="duration (s)"),
                alt.Tooltip("confidence_before:Q", format=".2%", title="confidence before"),
                alt.Tooltip("confidence_after:Q", format=".2%", title="confidence after"),
                "rejected_reason",
            ],
        )
        .properties(height=40 + 30 * max(len(order), 1))
    )


def timeframe_heatmap(predictions: pd.DataFrame) -> alt.FacetChart:
    """The latest predictions per timeframe: green = up, red = down, shade = P(up); newest right."""
    order = [tf for tf in TIMEFRAMES if tf in set(predictions["timeframe"])]
    df = _text_time(predictions, "time").assign(
        candle=-(predictions["rank"] - 1), label=predictions["confidence"].map("{:.0%}".format)
    )
    base = alt.Chart().encode(
        x=alt.X("candle:O", title="candles ago (0 = latest)"),
        y=alt.Y("timeframe:N", sort=order, title=None),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "p_up:Q",
            title="P(up)",
            scale=alt.Scale(scheme="redyellowgreen", domain=[0.3, 0.7], clamp=True),
        ),
        tooltip=[
            "when",
            "timeframe",
            "direction",
            alt.Tooltip("p_up:Q", format=".3f"),
            alt.Tooltip("confidence:Q", format=".1%"),
            "model_version",
        ],
    )
    label = base.mark_text(fontSize=9).encode(text="label:N")
    return alt.layer(rect, label, data=df).facet(row=alt.Row("symbol:N", title=None))
