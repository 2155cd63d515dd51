"""Readers of the store for operators: the terminal monitor, the JSON reports and the
Prometheus exporter. Nothing here writes to the trading database."""
