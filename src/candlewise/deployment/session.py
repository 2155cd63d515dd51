"""One deployment: the engine trading a set of symbols on a feed, with health checks, operator
control (rollback, manual retrains) and, for a bounded phase, its validation at the end.

The engine state lives in an ``engine_runs`` row of kind ``deployment`` (the same checkpoints as
a backtest): Ctrl+C / SIGTERM stop at a minute boundary and keep the open positions, and the
next deployment of the same symbols continues from that state; phase 3 carries phase 1's
account on the same way (its symbol is continued, not redeployed) and adds the other symbols
to it, with a feed that starts now. A rollback (``--rollback`` from
another terminal, through the ``deployments.control`` column, or the drawdown limit) flattens
every position first, and the run stops in that minute. A store that refuses writes (a full
disk, a read-only folder) stops the run at its last checkpoint, recorded as stopped
(``deployment.unfinished``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import Engine

from candlewise.app.bootstrap import Application
from candlewise.core.timeframes import MINUTE_MS
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.unfinished import record_fault, report_unfinished, stop_message
from candlewise.engine.runner import EngineRunner, Interrupted, manual_retrains
from candlewise.engine.setup import build_predictor, new_engine, primed_aggregators, warm_up
from candlewise.engine.trading_engine import TradingEngine
from candlewise.market.feed_factory import FeedPlan
from candlewise.market.ingest import check_source
from candlewise.store import deployment_store, trade_store
from candlewise.store.run_store import (
    DEPLOYMENT_KIND,
    FINISHED,
    RUNNING,
    RunRecord,
    create_run,
    find_run,
    save_checkpoint,
)
from candlewise.store.snapshots import load_snapshot
from candlewise.store.storage_fault import StorageFault
from candlewise.system.logging_setup import get_logger
from candlewise.training.retrain_worker import InlineRetrainer, ProcessRetrainer, Retrainer

RUN_KIND = DEPLOYMENT_KIND
OPERATOR_ROLLBACK = "rollback requested by the operator"
CONTROL_POLL_S = 1.0
log = get_logger("deployment")


@dataclass(frozen=True)
class DeploymentRequest:
    phase: int
    symbols: tuple[str, ...]
    feed: str
    duration_ms: int | None
    """None: until stopped (phase 3)."""
    speed: float | None
    """None: as fast as possible (simulated or replayed feeds only)."""
    files: tuple[Path, ...] = ()
    from_now: bool = False
    """The feed starts now and runs ``duration_ms`` on (phase 3: live from the present); else
    a simulated feed plays ``[now - duration, now)`` (phase 1: a window that ends now)."""
    continues: tuple[str, ...] = ()
    """Symbols of an earlier phase whose account this deployment carries on (phase 3: phase
    1's), when these symbols have no stopped deployment of their own."""
    validation_override: str | None = None
    """Why phase 1 runs without an approved paper-trading validation (``--force --reason``)."""


@dataclass(frozen=True)
class DeploymentOutcome:
    deployment_id: int
    run_id: int
    status: str
    """completed, stopped (Ctrl+C / SIGTERM, positions kept) or rolled_back (flattened)."""
    start_ms: int
    end_ms: int
    reason: str | None = None


MinuteHook = Callable[["Deployment", int], None]


@dataclass(frozen=True)
class Account:
    """The account a deployment continues (None: a new one) and the symbols it carries, each
    with the phase that deployed it."""

    previous: RunRecord | None
    carried: dict[str, int]


@dataclass(frozen=True)
class StartedRun:
    """What ``Deployment.prepare`` wrote: the run's engine, its ``engine_runs`` row and
    ``deployments`` row, the snapshot kept with each checkpoint and where the feed starts."""

    engine: TradingEngine
    run_id: int
    deployment_id: int
    snapshot: dict[str, Any]
    cursor: int


class Deployment:
    def __init__(
        self,
        app: Application,
        request: DeploymentRequest,
        account: Account,
        plan: FeedPlan,
        started: StartedRun,
        retrainer: Retrainer,
        *,
        stop: Callable[[], bool] | None = None,
        on_minute: MinuteHook | None = None,
    ) -> None:
        """The parts ``prepare`` built; see there."""
        self.app = app
        self.cfg = app.config
        self.store = app.store
        self.registry = app.registry
        self.request = request
        self.symbols = list(request.symbols)
        self.previous, self.carried = account.previous, account.carried
        self.plan = plan
        self.source: str = feed_source(plan, request)
        self.candle_source = candle_source(plan, request)
        self.retrainer = retrainer
        self.engine, self.run_id = started.engine, started.run_id
        self.deployment_id, self.cursor = started.deployment_id, started.cursor
        self.started_ms = plan.start_ms
        self.stop = stop
        self.on_minute_hook = on_minute
        self._rollback_reason: str | None = None
        self._rollback_asked = False  # seen in the store while waiting for a candle
        self._control_read_at = 0.0
        if hasattr(plan.clock, "interrupt"):  # a stop must not wait for the next candle
            plan.clock.interrupt = self._stop_requested
        self.runner = EngineRunner(
            self.engine,
            self.store,
            self.run_id,
            started.snapshot,
            candle_source=self.candle_source,
            read_ahead=not is_live(request),
            stop=self._stop_requested,
            on_minute=self._on_minute,
        )

    @classmethod
    def prepare(
        cls,
        app: Application,
        request: DeploymentRequest,
        *,
        now_ms: int,
        stop: Callable[[], bool] | None = None,
        on_minute: MinuteHook | None = None,
    ) -> Deployment:
        """Find the account to continue, plan the feed, start the run (its rows and a first
        checkpoint): a deployment ready to ``run``."""
        store = app.store
        account = find_account(store, request)
        report_unfinished(store, account.previous.id if account.previous is not None else None)
        plan = plan_window(app, request, account.previous, now_ms)
        source = candle_source(plan, request)
        if source is not None:  # never append another price history to a symbol
            with store.begin() as conn:
                for symbol in request.symbols:
                    check_source(conn, symbol, source)
        retrainer = new_retrainer(app, request)
        started = start_run(app, request, account, plan, retrainer)
        deployment = cls(
            app, request, account, plan, started, retrainer, stop=stop, on_minute=on_minute
        )
        deployment.runner.checkpoint(started.cursor)
        return deployment

    # --- running --------------------------------------------------------------------------------

    def run(self) -> DeploymentOutcome:
        status = deployment_store.COMPLETED
        last = None
        try:
            last = self.runner.run(self.plan.feed.candles(), self.cursor)
            # A live feed gives up waiting for its next candle when asked to stop.
            if self.rolled_back is None and self._poll_rollback(force=True):
                self.rollback(last if last is not None else self.cursor, OPERATOR_ROLLBACK)
            if self._stop_requested():
                raise Interrupted(last if last is not None else self.cursor)
        except StorageFault as fault:  # the store refuses writes: stop at the last checkpoint
            self._stopped_by(fault)
        except Interrupted as exc:
            last = exc.cursor_ms
            if self.rolled_back is None and self._poll_rollback(force=True):
                self.rollback(last, OPERATOR_ROLLBACK)  # --rollback also signals the process
            status = (
                deployment_store.ROLLED_BACK
                if self.rolled_back is not None
                else deployment_store.STOPPED
            )
        finally:
            self.retrainer.close()
        end = last if last is not None else self.cursor
        # A rolled-back account is flat and done; otherwise the next deployment of these
        # symbols continues it (open positions, modes, drawdown peak, models in service).
        self.runner.checkpoint(end, FINISHED if self.rolled_back else RUNNING)
        return DeploymentOutcome(
            self.deployment_id, self.run_id, status, self.started_ms, end, self.rolled_back
        )

    def _stopped_by(self, fault: StorageFault) -> NoReturn:
        at = ms_to_text(self.runner.saved_ms)
        recorded = record_fault(self.store, self.deployment_id, at, fault)
        raise StorageFault(
            stop_message(self.deployment_id, at, fault),
            f"{fault.hint}; the deployment then continues from its last checkpoint "
            f"({at} UTC, open positions kept)"
            + (
                ""
                if recorded
                else "; the store could not even record the stop, the next start does"
            ),
            fault.path,
        ) from None

    def rollback(self, now: int, reason: str) -> None:
        """Flatten every position, stop trading and stop the run at this minute."""
        if self.rolled_back is None:
            self._rollback_reason = reason
            self.engine.rollback(now, reason)

    @property
    def rolled_back(self) -> str | None:
        """Why this deployment rolled back (the operator, a health check or the engine's
        drawdown guard); None while it trades. A rolled-back deployment stops at that minute."""
        if self._rollback_reason is None and self.engine.stats.rollback is not None:
            self._rollback_reason = self.engine.stats.rollback  # the drawdown guard flattened
        return self._rollback_reason

    def _stop_requested(self) -> bool:
        if self.rolled_back is not None or (self.stop is not None and self.stop()):
            return True
        return self._rollback_asked or self._poll_rollback()

    def _poll_rollback(self, *, force: bool = False) -> bool:
        """A --rollback from another terminal, read from the store at most once a second: at
        minute ends and between candles (a live feed waits up to a minute for one), without a
        query per minute of an unpaced replay."""
        moment = time.monotonic()
        if not force and moment - self._control_read_at < CONTROL_POLL_S:
            return False
        self._control_read_at = moment
        with self.store.connect() as conn:
            record = deployment_store.get_deployment(conn, self.deployment_id)
        self._rollback_asked = record is not None and record.control == deployment_store.ROLLBACK
        return self._rollback_asked

    def _on_minute(self, now: int) -> None:
        if self.rolled_back is None and (self._rollback_asked or self._poll_rollback()):
            self.rollback(now, OPERATOR_ROLLBACK)
        if self.rolled_back is not None:
            return  # flattened this minute: the run stops here, nothing more to check or alert
        if is_live(self.request):
            manual_retrains(self.engine, self.symbols, now)
        if self.on_minute_hook is not None:
            self.on_minute_hook(self, now)


# --- set-up -------------------------------------------------------------------------------------


def is_live(request: DeploymentRequest) -> bool:
    """Paced or live: minute by minute, retrains in a worker process, operator requests."""
    return request.speed is not None or request.feed == "binance"


def feed_source(plan: FeedPlan, request: DeploymentRequest) -> str:
    return getattr(plan.feed, "source", request.feed)


def candle_source(plan: FeedPlan, request: DeploymentRequest) -> str | None:
    """The label the feed's candles are stored with; None for a replay of the store (they are
    stored already)."""
    source = feed_source(plan, request)
    return None if source == "replay" and not request.files else source


def find_account(store: Engine, request: DeploymentRequest) -> Account:
    """The account to continue: a stopped deployment of these symbols, else that of the
    earlier phase the request names (when its symbols are among these)."""
    symbols = list(request.symbols)
    with store.connect() as conn:
        run = find_run(conn, RUN_KIND, {"symbols": symbols})
        carried = symbols
        earlier = list(request.continues)
        if (run is None or run.status != RUNNING) and earlier:
            run = None
            if earlier != symbols and set(earlier) <= set(symbols):
                run, carried = find_run(conn, RUN_KIND, {"symbols": earlier}), earlier
        if run is None or run.status != RUNNING:
            return Account(None, {})
        phase = deployment_store.phase_of_run(conn, run.id) or request.phase
    return Account(run, dict.fromkeys(carried, phase))


def plan_window(
    app: Application, request: DeploymentRequest, previous: RunRecord | None, now_ms: int
) -> FeedPlan:
    """The feed's window. A simulated phase 1 plays [now - duration, now) of the seed's
    history, also where the store holds it already (the same candles): "the last 6 hours"
    are then real rows. A phase 3 starts now. A continued account never sees a candle
    twice: the feed starts after what its deployment handled."""
    duration = request.duration_ms
    last = previous.cursor_ms if previous is not None else None
    # In real time the simulated exchange is live: it continues the stored history up to now
    # and runs on the wall clock from there (see feed_factory), whichever the phase.
    replayed_sim = request.feed == "simulated" and request.speed != 1
    start = None
    if request.from_now and replayed_sim:
        start = max(now_ms, last or 0)  # its minute's candle is the first
    elif request.from_now and request.feed == "replay" and last is not None:
        start = last
    elif replayed_sim and duration is not None and last is not None:
        # continue after what the stopped deployment handled, never replay it twice
        duration = max(0, min(duration, now_ms - now_ms % MINUTE_MS - last))
    end = None
    if start is not None and duration is not None and replayed_sim:
        end = start - start % MINUTE_MS + duration
    return app.plan_feed(
        request.feed,
        request.symbols,
        from_store=not replayed_sim,
        now_ms=now_ms,
        duration_ms=duration,
        speed=request.speed,
        files=request.files,
        start_ms=start,
        end_ms=end,
    )


def new_retrainer(app: Application, request: DeploymentRequest) -> Retrainer:
    """A paced or live run retrains in a worker process (the event loop never waits for
    one); a replay inline, deterministic."""
    kind = ProcessRetrainer if is_live(request) else InlineRetrainer
    return kind(app.store, app.registry, app.config)


def start_run(
    app: Application,
    request: DeploymentRequest,
    account: Account,
    plan: FeedPlan,
    retrainer: Retrainer,
) -> StartedRun:
    """A new engine at the feed's start, or the state a stopped deployment of the same
    symbols (or phase 1, for phase 3) left, open positions kept, continued from its last
    checkpoint; its run and deployment rows."""
    cfg, store, symbols = app.config, app.store, list(request.symbols)
    predictor = build_predictor(cfg, app.registry, cfg.paths.models_dir, symbols)
    broker = app.new_broker("live-spot" if cfg.live_trading.mode == "live" else "paper")
    previous = account.previous
    start = plan.start_ms
    with store.begin() as conn:
        run_id = create_run(conn, RUN_KIND, {"symbols": symbols})
    engine = new_engine(
        cfg, store, app.registry, predictor, broker, run_id=run_id, retrainer=retrainer
    )
    if previous is not None and previous.snapshot:
        snapshot = carry_on(app, engine, account, symbols, start)
        with store.begin() as conn:  # the old run is continued by the new one
            save_checkpoint(
                conn, previous.id, previous.cursor_ms or start, previous.snapshot, FINISHED
            )
        log.info("Continuing the state of deployment run %d (open positions kept)", previous.id)
    else:
        warm_up(predictor, store, symbols, start)
        snapshot = {"aggregators": primed_aggregators(store, symbols, start)}
    with store.connect() as conn:  # other accounts' positions may be stored: ids are keys
        engine.broker.book.continue_ids_after(trade_store.last_position_id(conn))
    with store.begin() as conn:
        deployment_id = deployment_store.create_deployment(
            conn, request.phase, symbols, run_id, request.validation_override
        )
    return StartedRun(engine, run_id, deployment_id, snapshot, start)


def carry_on(
    app: Application, engine: TradingEngine, account: Account, symbols: Sequence[str], start: int
) -> dict[str, Any]:
    """Restore the carried account into ``engine``; symbols joining it (phase 3's beside
    phase 1's) keep the models just built and start as a new deployment does."""
    assert account.previous is not None and account.previous.snapshot is not None
    snapshot = load_snapshot(account.previous.snapshot)
    predictor = engine.predictor
    added = [s for s in symbols if s not in account.carried]
    names = app.config.timeframes.names
    fresh = {(s, tf): predictor.model_slot(s, tf) for s in added for tf in names}
    engine.restore(snapshot["engine"])
    for (symbol, tf), slot in fresh.items():
        predictor.set_model(symbol, tf, slot)
    if added:
        warm_up(predictor, app.store, added, start)
        snapshot["aggregators"].update(primed_aggregators(app.store, added, start))
    return snapshot
