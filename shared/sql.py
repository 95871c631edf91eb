"""A SQL session as the Platform port hands it out: the few things activities do on a cluster's endpoint,
so none of them depends on the driver. Both adapters connect with psycopg and wrap the connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import psycopg

# What a session raises: the driver's own errors, passed through unchanged, so a report quotes them as before.
SqlError = psycopg.Error
MissingTable = psycopg.errors.UndefinedTable  # e.g. a standby yet to replay a CREATE TABLE


class Rows(Protocol):
    def fetchone(self) -> tuple[Any, ...] | None: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...
    def __iter__(self) -> Iterator[tuple[Any, ...]]: ...


class Sql(Protocol):
    autocommit: bool
    read_only: bool

    @property
    def port(self) -> int | None:
        """The port of the instance the session reached (which member an endpoint chose)."""

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Rows: ...
    def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def transaction(self) -> AbstractContextManager[Any]: ...
    def commit(self) -> None: ...
    def cancel(self) -> None:
        """Cancel the statement running now; safe from another thread (a timer bounding a hung commit)."""


class Session:
    """A psycopg connection as `Sql`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def autocommit(self) -> bool:
        return self._conn.autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._conn.autocommit = value

    @property
    def read_only(self) -> bool:
        return bool(self._conn.read_only)

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self._conn.read_only = value

    @property
    def port(self) -> int | None:
        return self._conn.info.port

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Rows:
        return self._conn.execute(query, params)  # type: ignore[call-overload]  # queries are pgha's or a request's

    def executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(query, rows)  # type: ignore[arg-type]

    def transaction(self) -> AbstractContextManager[Any]:
        return self._conn.transaction()

    def commit(self) -> None:
        self._conn.commit()

    def cancel(self) -> None:
        self._conn.cancel_safe()


@contextmanager
def connect(conninfo: str = "", **kwargs: Any) -> Iterator[Session]:
    """psycopg.connect's arguments; the connection closes (rolled back on an error) when the block ends."""
    with psycopg.connect(conninfo, **kwargs) as conn:
        yield Session(conn)
