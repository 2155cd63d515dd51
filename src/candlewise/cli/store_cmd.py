"""``candlewise db upgrade|info``, ``candlewise backup`` and ``candlewise restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from candlewise.cli.context import AppContext, console
from candlewise.cli.options import ConfigOpt, DbOpt
from candlewise.core.errors import UserError
from candlewise.store import backup as backups
from candlewise.store.db import create_db_engine, safe_url, table_names
from candlewise.store.migrate import current_revision, head_revision, upgrade

db_app = typer.Typer(help="Database schema and status.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Create or migrate the schema to the newest revision."""
    ctx = AppContext(config, db)
    engine = create_db_engine(ctx.config.database.url)
    changed = upgrade(engine)
    state = "migrated to" if changed else "already at"
    console.print(f"✓ {safe_url(ctx.config.database.url)} {state} revision {head_revision()}")


@db_app.command("info")
def db_info(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Database URL (password hidden), schema revision and tables."""
    ctx = AppContext(config, db)
    engine = ctx.engine
    console.print(f"Database: {safe_url(ctx.config.database.url)}")
    console.print(f"Revision: {current_revision(engine)} (newest: {head_revision()})")
    console.print(f"Tables: {', '.join(sorted(table_names(engine)))}")


def backup_command(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Consistent copy of the live database (SQLite online backup) and models/ into backups/."""
    ctx = AppContext(config, db)
    paths = ctx.config.paths
    result = backups.backup(ctx.db_path, Path(paths.models_dir), Path(paths.backups_dir))
    console.print(
        f"✓ Backup written: {result.folder} (database {result.db_bytes:,} bytes, "
        f"integrity {result.integrity}; {result.model_files} model files)"
    )


def restore_command(
    folder: Annotated[
        Path | None, typer.Argument(help="Backup folder or name (default: newest, no safety copy).")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the backups and exit.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Bring a backup back; the current database and models are backed up first."""
    ctx = AppContext(config, db)
    paths = ctx.config.paths
    backups_dir = Path(paths.backups_dir)
    available = backups.list_backups(backups_dir)
    if list_:
        if not available:
            console.print(
                f"No backups in {paths.backups_dir}/ yet. Make one with 'candlewise backup'."
            )
        for item in available:
            console.print(f"  {item}")
        return
    regular = backups.list_backups(backups_dir, include_safety=False)
    chosen = backups.resolve(folder, backups_dir) if folder else (regular[-1] if regular else None)
    if chosen is None:
        raise UserError(f"no backups in {paths.backups_dir}/", "make one with 'candlewise backup'")
    if not yes and not typer.confirm(
        f"Replace {ctx.db_path} and {paths.models_dir}/ with {chosen}?"
    ):
        raise typer.Exit(1)
    safety = backups.restore(chosen, ctx.db_path, Path(paths.models_dir), Path(paths.backups_dir))
    if safety:
        console.print(f"✓ Previous state saved to {safety.folder}")
    console.print(f"✓ Restored {chosen} into {ctx.db_path} and {paths.models_dir}/")
