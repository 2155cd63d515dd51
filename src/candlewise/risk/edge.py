"""Does a signal's expected gain pay for its trade? (plain Python)

A round trip costs ``2 x (fee_rate + slippage)`` of the notional, whatever the outcome. A
signal with calibrated confidence ``c`` about a candle whose absolute move is ``m`` on average
expects ``c x m - (1 - c) x m = (2c - 1) x m`` before costs. A 1m candle moves ~0.05 %, so a
0.60 signal expects 0.01 % against 0.30 % of costs: every such trade is a loss by construction
(measured: all 121 one-minute paper trades of a 6-hour validation lost, by 0.26-0.33 % each).
With ``risk.min_edge_over_costs`` > 0, entries are taken only when the expected gain is at
least that many times the costs; the shadow book applies the same rule, so LEARNING-mode
scoring measures what TRADING mode would do. It is 0 (off) by default because at 1.0 neither
the simulated market nor real BTC/ETH data gives the current models a single trade: their
edge is far below 0.3 % round-trip costs (README, "The engine").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import log


def round_trip_cost(fee_rate: float, slippage: float) -> float:
    return 2.0 * (fee_rate + slippage)


def mean_abs_move(closes: Sequence[float]) -> float | None:
    """Mean absolute log return between consecutive closes; None with fewer than two."""
    if len(closes) < 2:
        return None
    moves = [abs(log(b / a)) for a, b in pairwise(closes) if a > 0 and b > 0]
    return sum(moves) / len(moves) if moves else None


@dataclass(frozen=True, slots=True)
class EdgeCheck:
    expected_gain: float
    cost: float
    passes: bool

    @property
    def reason(self) -> str:
        return (
            f"expected gain {100 * self.expected_gain:.3f}% < round-trip costs "
            f"{100 * self.cost:.3f}%"
        )


def check_edge(
    confidence: float, move: float | None, cost: float, min_edge_over_costs: float
) -> EdgeCheck:
    """``min_edge_over_costs`` 0 always passes; an unknown move (no history) never does."""
    if min_edge_over_costs <= 0:
        return EdgeCheck(0.0, cost, True)
    gain = (2.0 * confidence - 1.0) * move if move is not None else 0.0
    return EdgeCheck(gain, cost, move is not None and gain >= min_edge_over_costs * cost)
