"""``candlewise evaluate``: walk-forward evaluation of the models on a candle file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, check_symbol
from candlewise.core.errors import UserError
from candlewise.core.timeframes import HIGHER_TIMEFRAMES, TIMEFRAMES
from candlewise.evaluation.scores import Score

if TYPE_CHECKING:  # the walk forward loads torch: imported once the command runs
    from candlewise.evaluation.walk_forward import (
        AggregateResult,
        TimeframeResult,
        WalkForwardConfig,
    )


def load_timeframes(paths: list[Path], symbol: str) -> dict[str, pd.DataFrame]:
    """One frame per timeframe: the files given, plus 5m..1d built from a 1m file."""
    from candlewise.market.aggregation import aggregate_frame
    from candlewise.market.candle_files import infer_timeframe, read_candle_file
    from candlewise.market.validation import validate_frame

    frames: dict[str, pd.DataFrame] = {}
    for path in paths:
        raw = read_candle_file(path)
        tf = infer_timeframe(raw)
        if tf is None:
            raise UserError(
                f"cannot tell the timeframe of {path.name}: its timestamps are not spaced "
                "1m, 5m, 15m, 1h, 4h or 1d apart"
            )
        if tf in frames:
            raise UserError(f"two {tf} files given", "pass one file per timeframe")
        frames[tf], _issues = validate_frame(raw, symbol, tf)
    if "1m" in frames:
        for tf in HIGHER_TIMEFRAMES:
            frames.setdefault(tf, aggregate_frame(frames["1m"], tf))
    return {tf: frames[tf] for tf in TIMEFRAMES if tf in frames}


def _pct(value: float | None) -> str:
    return "—" if value is None or value != value else f"{100 * value:.2f}%"


def _row(name: str, s: Score) -> list[str]:
    cells = [name, f"{s.predictions:,}", _pct(s.accuracy), _pct(s.majority_baseline)]
    for t in s.by_confidence:
        cells.append(f"{_pct(t.accuracy)} ({t.count:,})")
    return [*cells, _pct(s.ece), f"{s.brier:.4f}"]


def evaluate(
    data: Annotated[
        list[Path],
        typer.Option("--data", help="Candle file (repeat for several timeframes)."),
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="e.g. BTC/USDT")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results here.")
    ] = None,
    blocks: Annotated[
        int, typer.Option("--blocks", min=1, max=500, help="Retrains per timeframe.")
    ] = 20,
    config: ConfigOpt = None,
) -> None:
    """Walk forward over real candles: train on the past, predict the next block, repeat."""
    from candlewise.evaluation.walk_forward import WalkForwardConfig, aggregate_walk_forward
    from candlewise.training.first_training import training_config

    check_symbol(symbol)
    ctx = AppContext(config)
    cfg = ctx.config
    frames = load_timeframes(data, symbol)
    wf = WalkForwardConfig(
        max_samples=cfg.models.max_samples, blocks=blocks, training=training_config(cfg)
    )
    started = time.perf_counter()
    results = _walk_forward(frames, wf, symbol)
    aggregate = aggregate_walk_forward(results, cfg.timeframes.weights, wf, symbol)
    elapsed = time.perf_counter() - started
    candles = sum(len(f) for f in frames.values())

    names = ", ".join(p.name for p in data)
    _print_table(f"Walk-forward evaluation: {symbol} ({names})", results, aggregate)
    console.print(
        f"{candles:,} candles, {sum(r.retrains for r in results.values())} retrains, "
        f"{elapsed:.1f}s. Accuracy columns at a confidence bar show accuracy (count)."
    )
    if json_path is not None:
        _write_json(json_path, symbol, data, elapsed, results, aggregate)
        console.print(f"✓ Results written to {json_path}")


def _walk_forward(
    frames: dict[str, pd.DataFrame], wf: WalkForwardConfig, symbol: str
) -> dict[str, TimeframeResult]:
    """Each timeframe's walk forward, under one progress bar per timeframe."""
    from candlewise.evaluation.walk_forward import walk_forward_timeframe

    results = {}
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        tasks = {tf: bar.add_task(f"{symbol} {tf} walk-forward", total=None) for tf in frames}

        def on_block(tf: str, done: int, total: int) -> None:
            bar.update(tasks[tf], completed=done, total=total)

        for tf, frame in frames.items():
            results[tf] = walk_forward_timeframe(frame, tf, wf, on_block)
            done = results[tf].retrains or 1  # a skipped timeframe is done too
            bar.update(tasks[tf], completed=done, total=done)
    return results


def _print_table(
    title: str, results: dict[str, TimeframeResult], aggregate: AggregateResult
) -> None:
    table = Table(title=title)
    for col in ("model", "predictions", "accuracy", "majority baseline", "conf ≥ 0.55",
                "conf ≥ 0.6", "conf ≥ 0.7", "conf ≥ 0.8", "ECE", "Brier"):  # fmt: skip
        table.add_column(col, justify="left" if col == "model" else "right")
    for tf, r in results.items():
        if r.skipped:
            table.add_row(tf, "—", f"skipped: {r.skipped}", *[""] * 7)
        else:
            table.add_row(*_row(tf, r.score))
    table.add_row(*_row("aggregate", aggregate.calibrated))
    table.add_row(*_row("aggregate, uncalibrated mix", aggregate.raw))
    console.print(table)


def _write_json(
    json_path: Path,
    symbol: str,
    data: list[Path],
    elapsed: float,
    results: dict[str, TimeframeResult],
    aggregate: AggregateResult,
) -> None:
    report = {
        "symbol": symbol,
        "files": [str(p) for p in data],
        "seconds": round(elapsed, 3),
        "timeframes": {
            tf: {
                "candles": r.candles,
                "retrains": r.retrains,
                "skipped": r.skipped,
                **({} if r.skipped else r.score.to_dict()),
            }
            for tf, r in results.items()
        },
        "aggregate": aggregate.calibrated.to_dict(),
        "aggregate_uncalibrated": aggregate.raw.to_dict(),
        "aggregate_by_event_timeframe": {
            tf: s.to_dict() for tf, s in aggregate.by_timeframe.items()
        },
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=float))
