"""Bounded one-dimensional minimisation (Brent's method), without importing SciPy.

Temperature scaling needs one bounded scalar minimisation per fit. SciPy's
``minimize_scalar(method="bounded")`` does it, but importing ``scipy.optimize`` costs ~0.4 s,
paid by every process that calibrates a model (a backtest's start-up pays it twice, on both
cores). This is a line-for-line port of SciPy's ``_minimize_scalar_bounded`` (BSD-3-Clause,
Copyright (c) 2001-2002 Enthought, Inc. and 2003-2024 SciPy Developers; the Fortran original
is Brent's FMIN), on plain Python floats: the same arithmetic in the same order, so it returns
bit-for-bit what SciPy returns (``tests/models/test_bounded_minimize.py`` checks that).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_SQRT_EPS = math.sqrt(2.2e-16)
_GOLDEN_MEAN = 0.5 * (3.0 - math.sqrt(5.0))


@dataclass(frozen=True)
class BoundedMinimum:
    """Where the search stopped: ``x``, ``fun = f(x)``, evaluations used, converged or not."""

    x: float
    fun: float
    evaluations: int
    converged: bool


def _sign(v: float) -> float:
    """``np.sign(v) + (v == 0)``: the step direction, +1 for a zero step."""
    return 1.0 if v >= 0.0 else -1.0


@dataclass
class _Points:
    """Brent's state: the bracket ``[a, b]`` and the three best points so far, best first
    (``xf``, then ``nfc``, then ``fulc``), with their values."""

    a: float
    b: float
    xf: float
    fx: float
    nfc: float
    fnfc: float
    fulc: float
    ffulc: float


def minimize_bounded(
    f: Callable[[float], float],
    lo: float,
    hi: float,
    xatol: float = 1e-5,
    max_evaluations: int = 500,
) -> BoundedMinimum:
    """A local minimum of ``f`` on ``[lo, hi]`` to within ``xatol`` (golden section + parabolas).

    For a unimodal ``f`` it is the global minimum on the interval. The endpoints themselves are
    never evaluated (as in SciPy); callers that can have the minimum on a bound compare them.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("bounds must be finite numbers")
    if lo > hi:
        raise ValueError(f"the lower bound {lo} exceeds the upper bound {hi}")
    a, b = float(lo), float(hi)
    fulc = a + _GOLDEN_MEAN * (b - a)
    fx = float(f(fulc))
    pts = _Points(a=a, b=b, xf=fulc, fx=fx, nfc=fulc, fnfc=fx, fulc=fulc, ffulc=fx)
    rat = e = 0.0
    num = 1
    fu = math.inf
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * abs(pts.xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    converged = True

    while abs(pts.xf - xm) > (tol2 - 0.5 * (pts.b - pts.a)):
        e, rat = _step(pts, e, rat, xm, tol1, tol2)
        x = pts.xf + _sign(rat) * max(abs(rat), tol1)
        fu = float(f(x))
        num += 1
        _take(pts, x, fu)
        xm = 0.5 * (pts.a + pts.b)
        tol1 = _SQRT_EPS * abs(pts.xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= max_evaluations:
            converged = False
            break

    if math.isnan(pts.xf) or math.isnan(pts.fx) or math.isnan(fu):
        converged = False
    return BoundedMinimum(x=pts.xf, fun=pts.fx, evaluations=num, converged=converged)


def _step(
    pts: _Points, e: float, rat: float, xm: float, tol1: float, tol2: float
) -> tuple[float, float]:
    """The next ``(e, rat)``: a parabola through the three best points when its step is
    acceptable, else a golden-section step into the larger part of the bracket."""
    a, b, xf = pts.a, pts.b, pts.xf
    golden = True
    if abs(e) > tol1:  # try a parabola through the three best points
        golden = False
        r = (xf - pts.nfc) * (pts.fx - pts.ffulc)
        q = (xf - pts.fulc) * (pts.fx - pts.fnfc)
        p = (xf - pts.fulc) * q - (xf - pts.nfc) * r
        q = 2.0 * (q - r)
        if q > 0.0:
            p = -p
        q = abs(q)
        r = e
        e = rat
        if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
            rat = (p + 0.0) / q
            x = xf + rat
            if (x - a) < tol2 or (b - x) < tol2:
                rat = tol1 * _sign(xm - xf)
        else:
            golden = True
    if golden:
        e = (a - xf) if xf >= xm else (b - xf)
        rat = _GOLDEN_MEAN * e
    return e, rat


def _take(pts: _Points, x: float, fu: float) -> None:
    """Narrow the bracket by the new point and keep the three best points."""
    if fu <= pts.fx:
        if x >= pts.xf:
            pts.a = pts.xf
        else:
            pts.b = pts.xf
        pts.fulc, pts.ffulc = pts.nfc, pts.fnfc
        pts.nfc, pts.fnfc = pts.xf, pts.fx
        pts.xf, pts.fx = x, fu
    else:
        if x < pts.xf:
            pts.a = x
        else:
            pts.b = x
        if fu <= pts.fnfc or pts.nfc == pts.xf:
            pts.fulc, pts.ffulc = pts.nfc, pts.fnfc
            pts.nfc, pts.fnfc = x, fu
        elif fu <= pts.ffulc or pts.fulc in (pts.xf, pts.nfc):
            pts.fulc, pts.ffulc = x, fu
