"""``python deploy_production.py`` (= ``candlewise deploy``): the guide's phased rollout.

``--phase 1 --symbol S``: banner, the five pre-deployment checks and the approved paper-trading
validation it requires (or ``--force --reason``), the components, the
deployment for ``--duration`` (default ``deployment.phase1_duration``) with health checks, then
the validation block, stored in ``deployments`` and ``production_reports/phase1_<stamp>.json``.
``--phase 3``: every configured symbol, only after an approved phase 1 (or ``--force
--reason``), staggered, from now until stopped; phase 1's symbol goes on in its account.
``--rollback``: stop the running deployment, flattening every position, and close what stopped
deployments left open in the store (no open position is left either way). Ctrl+C / SIGTERM stop
gracefully and keep open positions for the next start.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, DbOpt, FeedOpt, SpeedOpt
from candlewise.core.errors import UserError
from candlewise.system.processes import process_alive

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from candlewise.store.deployment_store import DeploymentRecord

RULE = "=" * 80


PhaseOpt = Annotated[int | None, typer.Option("--phase", help="1 (one symbol) or 3 (all).")]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="Phase 1's symbol.")]
RollbackOpt = Annotated[
    bool, typer.Option("--rollback", help="Stop the running deployment, closing positions.")
]
DurationOpt = Annotated[str | None, typer.Option("--duration", help="e.g. 24h, 90m, 2d (phase 1).")]
ApproveOpt = Annotated[
    bool, typer.Option("--approve", help="Phase 3: the operator approves phase 1's result.")
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Phase 1 without an approved 48-hour paper-trading validation, phase 3 without "
        "an approved phase 1 (with --reason, recorded with the deployment).",
    ),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why --force.")]
StaggerOpt = Annotated[
    str | None, typer.Option("--stagger", help="Phase 3: pause between symbols, e.g. 30s.")
]
TrainMissingOpt = Annotated[
    bool, typer.Option("--train-missing", help="Train missing models before the checks.")
]


def deploy(
    phase: PhaseOpt = None,
    symbol: SymbolOpt = None,
    rollback: RollbackOpt = False,
    duration: DurationOpt = None,
    feed: FeedOpt = None,
    speed: SpeedOpt = "1",
    approve: ApproveOpt = False,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
    stagger: StaggerOpt = None,
    train_missing: TrainMissingOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """The phased rollout: phase 1 (one symbol, validated), phase 3 (all symbols), rollback."""
    ctx = AppContext(config, db)
    if rollback:
        _rollback(ctx)
        return
    if phase not in (1, 3):
        raise _phase_error(phase)
    from candlewise.deployment.phase import PhaseOptions, run_phase
    from candlewise.system.memory import freeze_start_up_objects

    freeze_start_up_objects()  # no ~90 ms full collection of torch's objects in the live loop

    if phase == 1 and symbol is None:
        raise UserError("phase 1 deploys one symbol", "add --symbol BTC/USDT")
    if symbol is not None:
        ctx.check_known_symbol(symbol)
    if force and not reason:
        raise UserError(
            "--force needs a reason, recorded with the deployment", 'add --reason "..."'
        )
    options = PhaseOptions(
        phase=phase,
        symbol=symbol,
        duration=duration,
        feed=feed,
        speed=speed,
        approve=approve,
        force_reason=reason if force else None,
        stagger=stagger,
        train_missing=train_missing,
        confirm=_terminal_confirm() if phase == 3 and not approve else None,
    )
    code = run_phase(ctx.app, options, console.print)
    if code:
        raise typer.Exit(code)


def _phase_error(phase: int | None) -> UserError:
    """Phase 2 is no run: it is the operator approving phase 1's result to start phase 3."""
    approve = (
        "after phase 1's validation, give the approval by starting phase 3: "
        "python deploy_production.py --phase 3 --approve (in a terminal, --phase 3 alone asks "
        'y/N; without an approved phase 1: --phase 3 --force --reason "...")'
    )
    if phase == 2:
        return UserError("phase 2 is the approval of phase 1's result, not a deployment", approve)
    what = "say which phase to run" if phase is None else f"there is no phase {phase}"
    return UserError(
        f"{what}: 1 deploys one symbol, 2 is the approval of its result, 3 deploys all symbols",
        "python deploy_production.py --phase 1 --symbol BTC/USDT; then "
        + approve
        + "; or --rollback",
    )


def _terminal_confirm() -> Callable[[str], bool] | None:
    """Phase 2 in a terminal: the operator answers y/N; scripts and pipes are never asked."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    return lambda question: typer.confirm(question, default=False)


def validate_paper(
    duration: Annotated[
        str, typer.Option("--duration", help="Hours (48) or with a unit (90m, 2d).")
    ] = "48",
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma list (default: the config's).")
    ] = None,
    feed: FeedOpt = None,
    speed: SpeedOpt = "1",
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Paper trading in a sandbox for --duration, judged on the phase criteria."""
    from candlewise.cli.options import split_symbols
    from candlewise.core.clock import parse_duration_ms, parse_speed
    from candlewise.deployment.paper_validation import run_paper_validation

    ctx = AppContext(config, db)
    text = duration.strip()
    try:
        duration_ms = parse_duration_ms(f"{text}h" if text.replace(".", "", 1).isdigit() else text)
        pace = parse_speed(speed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    chosen = [ctx.check_known_symbol(s) for s in split_symbols(symbols, ctx.config.symbols)]
    ctx.start_logging()
    code = run_paper_validation(
        ctx.app, chosen, feed or ctx.config.data.feed, duration_ms, pace, console.print
    )
    if code:
        raise typer.Exit(code)


def _rollback(ctx: AppContext) -> None:
    """Stop the running deployments (each flattens its account), then close what the store
    still holds open (accounts of stopped deployments): no open position is left either way."""
    from candlewise.deployment.stored_accounts import close_stored_accounts
    from candlewise.store import deployment_store
    from candlewise.store.run_store import DEPLOYMENT_KIND, running_deployments

    ctx.start_logging()
    for line in (RULE, "INITIATING ROLLBACK", RULE):
        console.print(line)
    with ctx.engine.begin() as conn:
        running = deployment_store.running(conn)
        alive = [d for d in running if process_alive(d.pid)]
        for d in running:
            if d not in alive:  # its process is gone: it did not finish, it crashed
                deployment_store.finish(conn, d.id, deployment_store.STOPPED)
        for d in alive:
            deployment_store.request_control(conn, d.id, deployment_store.ROLLBACK)
        stored = _open_count(conn)
        accounts = sum(1 for r in running_deployments(conn) if r.kind == DEPLOYMENT_KIND)
    if not alive and not stored and not accounts:
        console.print("No deployment is running: nothing to stop.")
        console.print("Data preserved in database for analysis.")
        return
    console.print("Stopping continuous learning system...")
    if not alive:  # a stopped deployment's account would be continued by the next start
        console.print(
            f"  No deployment is running: {stored} position(s) open in the store, "
            f"{accounts} account(s) kept for the next start, closed now."
        )
    console.print("Closing all open positions...")
    _stop_deployments(ctx, alive)
    closed = close_stored_accounts(ctx.config, ctx.engine)
    if closed.trades:
        pnl = sum(t.pnl_absolute for t in closed.trades)
        console.print(
            f"  ✓ {len(closed.trades)} stored position(s) closed at the last stored prices "
            f"(fees included, P&L ${pnl:+,.2f}), recorded as trades"
        )
    console.print("Disconnecting data provider...")
    with ctx.engine.connect() as conn:
        open_left = _open_count(conn)
    if open_left:
        raise UserError(
            f"{open_left} position(s) are still open after the rollback",
            "a deployment still holds them: stop its process, then run --rollback again",
        )
    console.print("✓ Rollback complete. System stopped.")
    console.print("Data preserved in database for analysis.")


def _open_count(conn: Connection) -> int:
    return sum(1 for _ in conn.exec_driver_sql("SELECT id FROM positions WHERE status = 'open'"))


def _stop_deployments(ctx: AppContext, alive: list[DeploymentRecord]) -> None:
    """Signal each running deployment and wait (60 s at most) until it records its stop."""
    from candlewise.store import deployment_store

    for d in alive:
        if d.pid and d.pid != os.getpid():
            os.kill(d.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    pending = {d.id for d in alive}
    while pending and time.monotonic() < deadline:
        time.sleep(0.2)
        with ctx.engine.connect() as conn:
            for d_id in list(pending):
                record = deployment_store.get_deployment(conn, d_id)
                if record is None or record.status != deployment_store.RUNNING:
                    pending.discard(d_id)
    if pending:
        raise UserError(
            f"deployment(s) {', '.join(map(str, sorted(pending)))} did not stop within 60 s",
            "check the process (its pid is in the deployments table) and kill it if needed; "
            "positions then stay open in the store until the next start",
        )
