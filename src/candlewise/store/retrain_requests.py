"""Manual retrain requests (``retrain_requests``): how ``candlewise retrain`` reaches a running
deployment in another process. The CLI inserts a pending row; the engine takes the rows of its
symbols at a minute end (marking them taken, in one transaction, so two engines never both take
one) and queues them like any trigger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select, update

from candlewise.core.timestamps import now_text
from candlewise.store.tables import retrain_requests

PENDING = "pending"
TAKEN = "taken"


def request_retrain(conn: Connection, symbol: str, timeframe: str) -> int:
    result = conn.execute(
        insert(retrain_requests).values(
            symbol=symbol, timeframe=timeframe, requested_at=now_text(), status=PENDING
        )
    )
    return int(result.inserted_primary_key[0])


def take_requests(
    conn: Connection, symbols: Sequence[str], run_id: int | None
) -> list[tuple[str, str]]:
    """The pending requests for ``symbols``, oldest first, now marked taken by ``run_id``."""
    r = retrain_requests.c
    rows = conn.execute(
        select(r.id, r.symbol, r.timeframe)
        .where(r.status == PENDING, r.symbol.in_(list(symbols)))
        .order_by(r.id)
    ).all()
    if rows:
        conn.execute(
            update(retrain_requests)
            .where(r.id.in_([row[0] for row in rows]), r.status == PENDING)
            .values(status=TAKEN, run_id=run_id, taken_at=now_text())
        )
    return [(row[1], row[2]) for row in rows]
