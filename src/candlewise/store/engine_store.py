"""The store's side of the engine's persistence port (``engine.persistence``): each call is one
transaction of its own."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from candlewise.store.outbox import Outbox
from candlewise.store.retrain_requests import take_requests


class StoreEnginePersistence:
    def __init__(self, store: Engine) -> None:
        self.store = store

    def save(self, outbox: Outbox) -> None:
        with self.store.begin() as conn:
            outbox.flush(conn)

    def take_retrain_requests(
        self, symbols: Sequence[str], run_id: int | None
    ) -> list[tuple[str, str]]:
        with self.store.begin() as conn:
            return take_requests(conn, symbols, run_id)
