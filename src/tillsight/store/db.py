"""Connecting to the store and bringing its schema up to date."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tillsight.errors import StoreError

DEFAULT_URL = "sqlite:///tillsight.db"
URL_VARIABLE = "TILLSIGHT_DATABASE_URL"


def database_url(url: str | None = None) -> str:
    """The URL given, else ``$TILLSIGHT_DATABASE_URL``, else ./tillsight.db.

    A value that is not a URL (no ``://``) is the path of a SQLite file.
    """
    given = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    return given if "://" in given else f"sqlite:///{given}"


def connect(
    url: str | None = None, *, migrate_schema: bool = True, must_exist: bool = False
) -> Engine:
    """Open the store (SQLite in WAL mode by default) and migrate it.

    With ``must_exist``, a SQLite file that is not there is a ``StoreError``
    rather than a new, empty store: a command that only reads would otherwise
    answer "nothing" for a mistyped path.
    """
    resolved = database_url(url)
    if must_exist:
        _require_file(resolved)
    try:
        # Bound values stay out of error messages, which reach logs.
        engine = create_engine(resolved, pool_pre_ping=True, hide_parameters=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database {_safe(resolved)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate_schema:
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()  # nobody else will: the caller never gets it
            raise
    return engine


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL: ``""`` for a store in memory, None if not SQLite."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # create_engine says what is wrong with it
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database or ""
    if path == ":memory:":
        return ""
    if path.startswith("file:"):  # an SQLite URI: the file is before any '?'
        path, _, options = path.removeprefix("file:").partition("?")
        return "" if "mode=memory" in options else path
    return path


def _require_file(url: str) -> None:
    path = sqlite_file(url)
    if path is None:
        return
    if not path:
        raise StoreError(
            f"{_safe(url)} is a store in memory, empty each time it opens: "
            "name a SQLite file or a PostgreSQL URL with --db"
        )
    if Path(path).exists():
        return
    raise StoreError(
        f"no store at {path}: check --db (or ${URL_VARIABLE}); "
        "`tillsight replay` or `tillsight serve` makes one"
    )


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration that the database lacks.

    A store already up to date is only read. Otherwise the migration runs
    under the store's migration lock (``tillsight.store.lock``), so that two
    commands opening a new store at once do not both create its tables.
    """
    # Imported here: the lock module reads SQLite URLs with this one.
    from tillsight.store.lock import migration_lock

    config = Config()
    location = resources.files("tillsight.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    try:
        if _is_current(engine, config):
            return
        with migration_lock(engine):
            target = _transactional(engine)
            try:
                with target.begin() as connection:
                    config.attributes["connection"] = connection
                    command.upgrade(config, "heads")
            finally:
                if target is not engine:
                    target.dispose()
    except SQLAlchemyError as exc:
        said = str(getattr(exc, "orig", None) or exc)
        if "readonly database" in said:
            said += (
                " (SQLite keeps a store's log beside its file, so even a command"
                " that only reads needs to write the file and its folder)"
            )
        raise StoreError(f"cannot migrate {_safe(str(engine.url))}: {said}") from exc


def _transactional(engine: Engine) -> Engine:
    """An engine whose transactions hold DDL too, for migrating.

    Python's sqlite3 module commits on its own around ``CREATE TABLE``, so a
    migration stopped halfway (a killed first run) would leave half a schema
    that no later run could finish. On SQLite the migration runs on an engine
    of its own that leaves transactions to SQLite: ``BEGIN IMMEDIATE`` first,
    so that every table or none is made. A store in memory lives only in
    its engine's connection, so it is migrated there.
    """
    if not sqlite_file(engine.url.render_as_string(hide_password=False)):
        return engine  # not SQLite, or SQLite in memory
    own = create_engine(engine.url, poolclass=NullPool)
    event.listen(own, "connect", _sqlite_pragmas)
    event.listen(own, "connect", _sqlite_driver_off)
    event.listen(own, "begin", _begin_immediate)
    return own


def _sqlite_driver_off(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_current(engine: Engine, config: Config) -> bool:
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _safe(url: str) -> str:
    """A URL with its password hidden, for messages."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"
