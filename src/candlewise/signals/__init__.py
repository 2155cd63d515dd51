"""Turning per-timeframe predictions into one calibrated trading signal per symbol."""
