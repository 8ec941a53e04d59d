"""`Part`: what one kind of derived state owns and how it is kept (see `store.derived`)."""
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Table
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Part:
    """One kind of derived state, computed from the base tables alone.

    `refresh(conn, keys)` recomputes what `keys` (sorted tuples, each of one of `kinds`) name and
    writes what changed; `rebuild(conn)` recomputes all of it.  A part writes only its own
    `tables` and `columns` and reads only base tables, so parts are independent of one another.
    """

    name: str
    tables: tuple[Table, ...]  # the derived tables it alone writes
    columns: tuple[Column, ...]  # derived columns of base tables it alone writes
    kinds: tuple[str, ...]  # the key kinds its refresh reads; () when the database keeps it (triggers)
    refresh: Callable[[Connection, list], None]
    rebuild: Callable[[Connection], None]
