"""The engine's persistence port: what the engine asks of a store, and nothing more.

The engine never opens a transaction: at the moments a run must be durable (before a retrain
reads the stored candles, after one registered a model) it asks its port to save the outbox.
A driver with checkpoints (``engine.runner``) does not use the port there: it drives the
engine's retrain steps itself and writes each of them as a checkpoint (outbox and snapshot in
one transaction). The store's adapter is ``store.engine_store.StoreEnginePersistence``; tests
pass an in-memory one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from candlewise.store.outbox import Outbox


class EnginePersistence(Protocol):
    def save(self, outbox: Outbox) -> None:
        """Make the outbox's rows durable, in one transaction, and empty it."""

    def take_retrain_requests(
        self, symbols: Sequence[str], run_id: int | None
    ) -> list[tuple[str, str]]:
        """The pending ``candlewise retrain`` requests (symbol, timeframe) for ``symbols``,
        oldest first, marked taken by ``run_id`` so that each is taken once."""
