"""Alerts: the log (always), a table row, and the channels configured under ``alerts:``."""

from candlewise.alerts.channels import DeliveryError, build_channels, webhook_payload
from candlewise.alerts.dispatcher import AlertDispatcher, Delivery
from candlewise.alerts.model import LEVELS, Alert, drawdown_alert, error_rate_alert

__all__ = [
    "LEVELS",
    "Alert",
    "AlertDispatcher",
    "Delivery",
    "DeliveryError",
    "build_channels",
    "drawdown_alert",
    "error_rate_alert",
    "webhook_payload",
]
