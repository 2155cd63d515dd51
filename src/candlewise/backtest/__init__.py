"""Backtests: the request, the history it needs, the run and its report."""
