"""``logs/production_deployment.log`` of a real simulated phase 1 carries the guide's line
formats ("Expected Behavior"), including the whole "Retraining Event" block."""

from __future__ import annotations

import re
from pathlib import Path

STAMP = r"\[\d\d:\d\d:\d\d\] "
MONEY = r"\d+\.\d\d"
PCT = r"\d+\.\d\d%"
GUIDE_FORMATS = {
    "candle close": rf"\[BTC/USDT @ (5m|15m|1h)\] Candle closed: O={MONEY} C={MONEY}",
    "aggregation": r"\[BTC/USDT\] [1-4] timeframe predictions? aggregated",
    "signal": rf"\[BTC/USDT\] TRADING MODE: (BUY|SELL) @ {PCT} \(paper\)",
    "trade": rf"✓ Paper trade executed: (BUY|SELL) BTC/USDT @ \${MONEY}",
    "exit": rf"\[BTC/USDT @ (1m|5m|15m|1h)\] Trade closed: (✓ WIN|✗ LOSS) \(-?{PCT}\)",
    "transition": rf"✓ \[BTC/USDT @ (1m|5m|15m|1h)\] Transitioned to (TRADING|LEARNING) mode "
    rf"\(confidence: {PCT}\)",
    "health check": r"(✓ Health check passed \(\d+ consecutive\)|⚠️  WARNING: .+)",
}


def _lines(project: Path) -> list[str]:
    text = (project / "logs" / "production_deployment.log").read_text()
    lines = text.splitlines()
    assert all(re.match(STAMP, line) for line in lines if line), "every line is time-stamped"
    return [re.sub(f"^{STAMP}", "", line) for line in lines]


def test_the_log_carries_every_guide_line_format(phase1_project: Path) -> None:
    lines = _lines(phase1_project)
    for what, pattern in GUIDE_FORMATS.items():
        assert any(re.fullmatch(pattern, line) for line in lines), f"no {what} line"
    assert (phase1_project / "logs" / "error.log").exists()


def test_each_retraining_event_logs_the_guides_block_in_order(phase1_project: Path) -> None:
    lines = _lines(phase1_project)
    starts = [i for i, line in enumerate(lines) if "Starting retraining (reason: " in line]
    assert starts, "the fixture's phase 1 retrains (it trades from 51 %)"
    for i in starts:
        model = re.fullmatch(r"⚙ \[(BTC/USDT_\w+)\] Starting retraining \(reason: \w+\)", lines[i])
        assert model, lines[i]
        tag = re.escape(model.group(1))
        rest = lines[i + 1 :]
        end = next(
            j for j, line in enumerate(rest) if re.match(rf"[✓✗] \[{tag}\] Retraining", line)
        )
        block = rest[:end]
        data = [
            ln for ln in block if re.fullmatch(rf"\[{tag}\] Training data: \d+ train, \d+ val", ln)
        ]
        epochs = [ln for ln in block if re.fullmatch(
            rf"Epoch \d+/\d+: Loss=\d+\.\d{{4}}, Val Acc={PCT}, Val Conf={PCT}", ln)]  # fmt: skip
        assert len(data) == 1 and epochs, block
        assert block.index(data[0]) < block.index(epochs[0])
        assert re.fullmatch(
            rf"(✓ \[{tag}\] Retraining successful! Confidence: {PCT}, Duration: \d+\.\d+s"
            rf"|✗ \[{tag}\] Retraining rejected: .+, Duration: \d+\.\d+s; "
            r"keeping the current model)",
            rest[end],
        ), rest[end]
