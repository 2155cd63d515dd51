"""Raising an alert: log it now, deliver and record it in the background, never fail the caller.

The engine calls ``raise_alert`` from its hot path, so the call only logs, deduplicates and
queues; a worker thread does the network (retries with exponential backoff) and the ``alerts``
row. A full queue drops its oldest alert rather than grow or block; a dead endpoint, a missing
secret or a broken store costs a warning, never a crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, insert

from candlewise.alerts.channels import Channel, DeliveryError, build_channels
from candlewise.alerts.model import Alert
from candlewise.config.app_config import AlertsConfig
from candlewise.config.secrets import Secrets
from candlewise.core.timestamps import datetime_to_text
from candlewise.store.tables import alerts as alerts_table
from candlewise.system.logging_setup import get_logger

log = get_logger("alerts")

_LOG_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}
_PRUNE_AT = 1024  # dedupe keys kept before expired ones are swept


@dataclass(frozen=True)
class Delivery:
    """Outcome of one alert over all its channels, as the ``alerts`` row records it.

    ``attempts`` counts rounds (3 = two failures, then success or the last try); ``last_error``
    keeps each channel's latest failure, also when a retry then got through.
    """

    delivered: bool
    attempts: int
    last_error: str | None


class AlertDispatcher:
    """Log + configured channels + ``alerts`` table; thread-safe; ``close`` drains the queue."""

    def __init__(
        self,
        cfg: AlertsConfig,
        secrets: Secrets,
        store: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cfg = cfg
        self._secrets = secrets
        self._store = store
        self._clock = clock
        self.channels, problems = build_channels(cfg, secrets)
        for problem in problems:
            log.warning(f"⚠ Alert channel skipped: {problem}")
        self._names = ",".join(["log", *(c.name for c in self.channels)])
        self._last_sent: dict[tuple[str, str, str | None, str], float] = {}
        self._queue: deque[Alert] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self.sent_count = 0
        self.suppressed_count = 0
        self.dropped_count = 0
        self.delivered_count = 0
        self.failed_count = 0
        self.store_errors = 0
        self._worker: threading.Thread | None = None
        if self.channels or store is not None:
            self._worker = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
            self._worker.start()

    def raise_alert(self, alert: Alert) -> bool:
        """Log and queue ``alert``; False when it repeats one sent within the interval."""
        now = self._clock()
        key = alert.dedupe_key
        with self._cond:
            last = self._last_sent.get(key)
            if last is not None and now - last < self._cfg.min_interval_seconds:
                self.suppressed_count += 1
                log.debug(f"alert suppressed (repeat within interval): {alert.text}")
                return False
            self._last_sent[key] = now
            if len(self._last_sent) > _PRUNE_AT:
                self._prune(now)
            self.sent_count += 1
        log.log(_LOG_LEVELS[alert.level], alert.text)
        self._enqueue(alert)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued (up to ``timeout`` s); True when nothing was left behind."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker is None:
            return True
        self._worker.join(timeout)
        with self._cond:
            left = len(self._queue) + (1 if self._busy else 0)
        if left:
            log.warning(f"⚠ {left} alert(s) not delivered before shutdown (see the log)")
        return left == 0

    def __enter__(self) -> AlertDispatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        interval = self._cfg.min_interval_seconds
        for key in [k for k, t in self._last_sent.items() if now - t >= interval]:
            del self._last_sent[key]

    def _enqueue(self, alert: Alert) -> None:
        if self._worker is None:
            return
        with self._cond:
            if self._closing:
                log.warning(f"⚠ alert raised after shutdown, logged only: {alert.kind}")
                return
            if len(self._queue) >= self._cfg.queue_size:
                dropped = self._queue.popleft()
                self.dropped_count += 1
                log.warning(f"⚠ alert queue full, oldest dropped undelivered: {dropped.text}")
            self._queue.append(alert)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                alert = self._queue.popleft()
                self._busy = True
            try:
                outcome = self._deliver(alert)
                self._record(alert, outcome)
            except Exception:  # last resort: the worker must outlive any one alert
                log.exception(f"alert worker error on {alert.kind}")
            finally:
                with self._cond:
                    self._busy = False

    def _deliver(self, alert: Alert) -> Delivery:
        """Every channel gets up to ``retry_attempts`` tries; backoff doubles between rounds."""
        pending: list[Channel] = list(self.channels)
        errors: dict[str, str] = {}
        attempts = 1
        for attempt in range(1, self._cfg.retry_attempts + 1):
            attempts = attempt
            failed: list[Channel] = []
            for channel in pending:
                try:
                    channel.send(alert)
                except DeliveryError as exc:
                    errors[channel.name] = self._secrets.redact(str(exc))
                    failed.append(channel)
                except Exception as exc:  # a sender bug must not stop the other channels
                    errors[channel.name] = self._secrets.redact(f"{type(exc).__name__}: {exc}")
                    failed.append(channel)
            pending = failed
            if not pending or attempt == self._cfg.retry_attempts:
                break
            time.sleep(self._cfg.retry_backoff_seconds * 2 ** (attempt - 1))
        for channel in pending:
            log.warning(
                f"⚠ Alert not delivered to {channel.name} after {attempts} attempt(s): "
                f"{errors[channel.name]}"
            )
        with self._cond:
            if pending:
                self.failed_count += 1
            else:
                self.delivered_count += 1
        last_error = "; ".join(f"{name}: {text}" for name, text in errors.items()) or None
        return Delivery(not pending, attempts, last_error)

    def _record(self, alert: Alert, outcome: Delivery) -> None:
        if self._store is None:
            return
        row = {
            "timestamp": datetime_to_text(alert.at),
            "level": alert.level,
            "kind": alert.kind[:32],
            "symbol": alert.symbol,
            "message": alert.text,
            "channels": self._names,
            "delivered": outcome.delivered,
            "attempts": outcome.attempts,
            "last_error": outcome.last_error,
        }
        try:
            with self._store.begin() as conn:
                conn.execute(insert(alerts_table), row)
        except Exception as exc:  # the alert is in the log already; the store may be down
            with self._cond:
                self.store_errors += 1
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning(f"⚠ alert not recorded in the database: {type(exc).__name__}: {reason}")
