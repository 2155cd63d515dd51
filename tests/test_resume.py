"""Crash recovery: a run killed with SIGKILL (or stopped) at checkpoints chosen by the progress
stored in its database, and resumed each time by the same command, ends with every stored value
of a run that was never interrupted, bit for bit: every column of every table (except the
run-specific ones listed in ``RUN_SPECIFIC``) and the weights of every model file.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from candlewise.app.bootstrap import bootstrap
from candlewise.cli.main import run
from candlewise.config.loader import load_config
from candlewise.core.timestamps import ms_to_text
from candlewise.deployment.session import Deployment, DeploymentRequest
from candlewise.models.model_file import load_model
from candlewise.store.db import open_store
from candlewise.store.model_registry import ModelRegistry
from candlewise.training.first_training import calibrate_signals, train_symbol
from tests.phase1_project import CONFIG as PHASE1_CONFIG
from tests.phase1_project import SYMBOL

pytestmark = pytest.mark.slow  # end to end: `make test-fast` leaves it out

MINUTE = 60_000
CONFIG = (
    "symbols: [BTC/USDT]\ncontinuous_learning:\n  confidence:\n"
    "    trading_threshold: 0.60\n    hysteresis: 0.05\n"
)
#: Retraining on: the kills also land inside retrains and around their checkpoints.
ARGS = ["backtest", "--config", "low.yaml", "--days", "0.5", "--seed", "3", "--warmup-days", "12"]

#: Columns two runs of the same request may legitimately store differently; everything else is
#: compared exactly.
RUN_SPECIFIC: dict[str, set[str]] = {
    # wall time of the attempt: reported, never acted on
    "retraining_history": {"duration_s"},
    # created_at and duration_s are wall clock; path: the models folder is named after the
    # database; checksum: over the file's metadata, which holds those two (the weights, the
    # normalisation and the temperature are compared file by file instead, ``_model_files``)
    "model_registry": {"created_at", "duration_s", "path", "checksum"},
    # the run's bookkeeping: params hold a hash of the configuration, which names the database;
    # started/updated/finished_at are wall clock, pid is the process; snapshot is the pickled
    # state, whose bytes depend on object sharing (its values are what the other tables hold)
    "engine_runs": {"params", "started_at", "updated_at", "finished_at", "pid", "snapshot"},
}
#: A stopped deployment is continued by a new deployment and a new engine run (by design): those
#: rows, and the ids pointing at them, differ from an uninterrupted deployment's.
DEPLOYMENT_SPECIFIC: dict[str, set[str] | None] = {
    **RUN_SPECIFIC,
    "engine_runs": None,  # None: the whole table
    "deployments": None,
    "equity_history": {"run_id"},
    "health_checks": {"deployment_id"},
    "retrain_requests": {"run_id"},
}


def _stored(db: Path, skip: Mapping[str, set[str] | None]) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows (all columns but the skipped ones), in a canonical order."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            if table in skip and skip[table] is None:
                continue
            dropped = skip.get(table) or set()
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] not in dropped]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def _model_files(models_dir: Path) -> dict[str, str]:
    """Each kept model version: a digest of its weights, normalisation and temperature."""
    out = {}
    for path in sorted(models_dir.glob("versions/*/*.pt")):
        model = load_model(path, expected_fingerprint=None).model
        digest = hashlib.sha256()
        for name in sorted(model.state_dict):
            digest.update(name.encode() + model.state_dict[name].numpy().tobytes())
        digest.update(np.asarray(model.norm_mean).tobytes() + np.asarray(model.norm_std).tobytes())
        digest.update(repr(float(model.temperature)).encode())
        out[path.relative_to(models_dir).as_posix()] = digest.hexdigest()
    assert out, f"no model files in {models_dir}"
    return out


def _assert_same_rows(got: Path, expected: Path, skip: Mapping[str, set[str] | None]) -> None:
    ref_rows, got_rows = _stored(expected, skip), _stored(got, skip)
    assert got_rows.keys() == ref_rows.keys()
    for table, rows in ref_rows.items():
        assert len(got_rows[table]) == len(rows), table  # nothing lost, nothing twice
        differ = [(a, b) for a, b in zip(got_rows[table], rows, strict=True) if a != b]
        assert not differ, f"{table}: {len(differ)} rows differ, first {differ[0]}"


def _ledger(output: str) -> str:
    found = re.search(r"^Ledger: ([0-9a-f]{64})$", output, re.M)
    assert found, output[-2000:]
    return found.group(1)


def _progress(db: Path) -> tuple[str, int | None, int | None] | None:
    """(status, cursor_ms, pid) of the run's checkpoint row, None before there is one."""
    if not db.exists():
        return None
    con = sqlite3.connect(db, timeout=5)
    try:
        row = con.execute("SELECT status, cursor_ms, pid FROM engine_runs").fetchone()
    except sqlite3.OperationalError:  # killed before the schema existed
        return None
    finally:
        con.close()
    return None if row is None else (row[0], row[1], row[2])


Reached = Callable[[tuple[str, int | None, int | None] | None, int], bool]


def _kill_when(command: list[str], db: Path, reached: Reached) -> bool:
    """Start ``command``, SIGKILL it once ``reached(progress, pid)``; True when it was still
    running then (the kill landed inside the run, not after it)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not reached(_progress(db), proc.pid):
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    landed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return landed


def _preparing(progress: tuple[str, int | None, int | None] | None, _pid: int) -> bool:
    return progress is not None and progress[0] == "preparing"


def _claimed(progress: tuple[str, int | None, int | None] | None, pid: int) -> bool:
    """This process took the run over: it is restoring the checkpoint or just past it."""
    return progress is not None and progress[2] == pid


def _at(target_ms: int) -> Reached:
    def reached(progress: tuple[str, int | None, int | None] | None, _pid: int) -> bool:
        return (
            progress is not None and progress[0] != "preparing" and (progress[1] or 0) >= target_ms
        )

    return reached


def _kill_points(start: int, end: int, count: int) -> list[Reached]:
    """In preparation, at checkpoints spread over the window, then while restoring (the last
    checkpoint before each kill is where the next run resumes)."""
    step = (end - start) // (count + 1)
    return [_preparing, *(_at(start + k * step) for k in range(1, count + 1)), _claimed]


@pytest.mark.timeout(600)
def test_kills_with_retraining_resume_to_every_stored_value_of_the_uninterrupted_run(
    workdir: Path,
) -> None:
    (workdir / "low.yaml").write_text(CONFIG)
    exe = str(Path(sys.executable).with_name("candlewise"))
    reference = subprocess.run([exe, *ARGS, "--db", "data/ref.db"], capture_output=True,
                               text=True, check=True)  # fmt: skip
    assert int(re.search(r"Trades: (\d+)", reference.stdout).group(1)) > 20  # type: ignore[union-attr]
    assert "accepted)" in reference.stdout and "Retrains by reason: none" not in reference.stdout
    end = _progress(workdir / "data" / "ref.db")[1]  # type: ignore[index]
    assert end is not None
    start = end - 720 * MINUTE  # --days 0.5

    db = workdir / "data" / "killed.db"
    command = [exe, *ARGS, "--db", str(db)]
    landed, cursors = [], []
    for reached in _kill_points(start, end, 6):
        landed.append(_kill_when(command, db, reached))
        cursors.append(_progress(db))
    resumed = subprocess.run(command, capture_output=True, text=True, check=True)

    assert all(landed), cursors  # every kill fell inside the run
    assert cursors[0] is not None and cursors[0][0] == "preparing"
    running = {c[1] for c in cursors[1:] if c is not None and c[0] == "running"}
    assert len(running) >= 5, cursors  # the checkpoints resumed from are spread over the window
    assert _ledger(resumed.stdout) == _ledger(reference.stdout)
    _assert_same_rows(db, workdir / "data" / "ref.db", RUN_SPECIFIC)
    assert _model_files(workdir / "data" / "killed_models") == _model_files(
        workdir / "data" / "ref_models"
    )


#: The block replay (no automatic retraining): checkpoints fall on block ends, once a second.
BLOCK_ARGS = ["backtest", "--config", "low.yaml", "--days", "90", "--seed", "3",
              "--warmup-days", "12", "--no-retrain"]  # fmt: skip


@pytest.mark.timeout(600)
def test_kills_during_a_block_replay_resume_to_every_stored_value(workdir: Path) -> None:
    (workdir / "low.yaml").write_text(CONFIG)
    exe = str(Path(sys.executable).with_name("candlewise"))
    reference = subprocess.run(
        [exe, *BLOCK_ARGS, "--db", "data/ref.db"], capture_output=True, text=True, check=True
    )
    log = (workdir / "logs" / "production_deployment.log").read_text()
    assert "Replay path: block" in log
    end = _progress(workdir / "data" / "ref.db")[1]  # type: ignore[index]
    assert end is not None
    start = end - 90 * 1440 * MINUTE

    db = workdir / "data" / "killed.db"
    command = [exe, *BLOCK_ARGS, "--db", str(db)]
    landed, cursors = [], []
    # kill points over the first three quarters: the last block days replay in well under a
    # second, and a kill aimed there can arrive after the run ended on a loaded machine
    last_target = start + (end - start) * 3 // 4
    for reached in _kill_points(start, last_target, 6)[1:]:  # preparation: as with retraining
        landed.append(_kill_when(command, db, reached))
        cursors.append(_progress(db))
    resumed = subprocess.run(command, capture_output=True, text=True, check=True)

    assert all(landed), cursors
    running = {c[1] for c in cursors if c is not None and c[0] == "running"}
    assert len(running) >= 5, cursors
    assert _ledger(resumed.stdout) == _ledger(reference.stdout)
    _assert_same_rows(db, workdir / "data" / "ref.db", RUN_SPECIFIC)


PHASE1_HOURS = 3
#: The shared phase-1 config with a 4h timeframe, which 10 days of candles cannot train.
PHASE1_WITH_4H = PHASE1_CONFIG.replace(
    "    - {interval: 1h, weight: 0.15}\n",
    "    - {interval: 1h, weight: 0.10}\n    - {interval: 4h, weight: 0.05}\n",
)
assert PHASE1_WITH_4H != PHASE1_CONFIG


def _phase1_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yaml"
    config.write_text(
        PHASE1_WITH_4H
        + f"database: {{url: 'sqlite:///{root.as_posix()}/data/trading.db'}}\n"
        + f"paths: {{models_dir: {root.as_posix()}/models, logs_dir: {root.as_posix()}/logs, "
        + f"validation_dir: {root.as_posix()}/validation_results}}\n"
    )
    return config


@pytest.mark.timeout(400)
def test_a_stopped_phase1_continued_after_a_recalibration_stores_the_uninterrupted_values(
    workdir: Path,
) -> None:
    """Phase 1 with ``--train-missing`` refits the signal calibration at every start while a
    timeframe is still untrained (4h here): the continued deployment must go on with
    the calibrators it was using, as an uninterrupted one does. In process, so that both see
    the same ``now``; the stop leaves what a kill -9 leaves, its last checkpoint (running)."""
    now = int(time.time() * 1000) // MINUTE * MINUTE - 10 * MINUTE
    duration = PHASE1_HOURS * 60 * MINUTE
    first = now - duration
    reference = _phase1_project(workdir / "reference")
    assert run(["data", "simulate", "--symbols", SYMBOL, "--days", "10",
                "--config", str(reference)]) == 0  # fmt: skip
    cfg = load_config(reference)
    store = open_store(cfg.database.url)
    try:  # what --train-missing does before the deployment starts
        registry = ModelRegistry(store, cfg.paths.models_dir, cfg.models.keep_versions)
        outcomes = train_symbol(
            store, registry, cfg, SYMBOL, cfg.timeframes.names, known_at_ms=first
        )
        assert [o.timeframe for o in outcomes if not o.ok] == ["4h"]
        calibrate_signals(store, cfg, SYMBOL, known_at_ms=first)
    finally:
        store.dispose()
    resumed = _phase1_project(workdir / "resumed")
    for folder in ("data", "models"):
        shutil.copytree(workdir / "reference" / folder, workdir / "resumed" / folder)
    request = DeploymentRequest(1, (SYMBOL,), "simulated", duration, None)

    store = open_store(cfg.database.url)
    try:
        Deployment.prepare(bootstrap(cfg, store=store), request, now_ms=now).run()
    finally:
        store.dispose()

    cfg = load_config(resumed)
    store = open_store(cfg.database.url)
    try:
        ended: list[int] = []
        stopped = Deployment.prepare(
            bootstrap(cfg, store=store),
            request,
            now_ms=now,
            stop=lambda: bool(ended) and ended[-1] >= first + 70 * MINUTE,
            on_minute=lambda _deployment, minute: ended.append(minute),
        ).run()
        assert stopped.status == "stopped" and stopped.end_ms == first + 70 * MINUTE
        # the next start's --train-missing: 4h still cannot train, the calibration is
        # refitted on the candles known by then
        calibrate_signals(store, cfg, SYMBOL, known_at_ms=stopped.end_ms)
        continued = Deployment.prepare(bootstrap(cfg, store=store), request, now_ms=now)
        assert continued.started_ms == stopped.end_ms
        continued.run()
    finally:
        store.dispose()

    expected, got = workdir / "reference", workdir / "resumed"
    _assert_same_rows(
        got / "data" / "trading.db", expected / "data" / "trading.db", DEPLOYMENT_SPECIFIC
    )
    assert _model_files(got / "models") == _model_files(expected / "models")
    con = sqlite3.connect(got / "data" / "trading.db")
    try:
        counts = con.execute(
            "SELECT (SELECT COUNT(*) FROM retraining_history), "
            "(SELECT COUNT(*) FROM confidence_history WHERE timestamp >= ?)",
            (ms_to_text(stopped.end_ms),),
        ).fetchone()
    finally:
        con.close()
    assert counts[0] > 0 and counts[1] > 60  # retrains ran, signals continued after the stop
