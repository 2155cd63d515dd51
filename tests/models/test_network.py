"""The numpy forward pass scores every row the same way, whatever rows it is scored with."""

from __future__ import annotations

import numpy as np
import torch

from candlewise.models.network import DirectionNet, NumpyForward


def test_a_rows_logit_does_not_depend_on_the_rows_scored_with_it() -> None:
    """A resumed replay scores blocks that start elsewhere than an uninterrupted run's, and the
    live path scores one row at a time: each row must get the same bits either way (BLAS
    computes a lone row, and the rows beyond its kernel's unroll, with other code)."""
    torch.manual_seed(3)
    forward = NumpyForward(DirectionNet(33).eval())
    x = np.random.default_rng(5).normal(size=(300, 33))
    whole = forward(x)
    for rows in (*range(1, 20), 31, 33, 100, 255):
        for start in (0, 1, 7):
            parts = [forward(x[i : i + rows]) for i in range(start, 300, rows)]
            np.testing.assert_array_equal(np.concatenate(parts), whole[start:], err_msg=f"{rows}")
    one_by_one = np.array([forward(x[i : i + 1])[0] for i in range(300)])
    np.testing.assert_array_equal(one_by_one, whole)
