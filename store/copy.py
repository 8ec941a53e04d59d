"""Copy a store into another (a SQLite store into PostgreSQL): resumable, verified by counts and checksums.

    python -m store.copy SOURCE DESTINATION      # each a SQLite path or a postgresql:// URL

Stop the server (web processes and processor) first: the copy reads the source in one transaction (a
consistent snapshot) but does not see what is written after it began.

What is copied: every table of `store.schema.metadata` in foreign-key order, rows in primary-key order with
their ids, in batches (at most `batch_rows` rows and about `batch_bytes` bytes of values each, so that
delivery bodies stream through in bounded memory); then each table's sequence is set past the copied ids
(`store.sqlfunctions.reset_sequence`).  `export_lines` is not copied: it is kept by the destination itself
(SQLite's triggers fill it as the runs arrive; on PostgreSQL the export formats every row and the table
stays empty).  The inbox (`store/inbox.py`: acknowledged deliveries not yet applied; a file beside a
SQLite store, a table of a PostgreSQL store) is copied with its ids when the source has one, so that the
destination's processor applies what the source's had not; the processor skips any already applied.

Resuming: a table with a one-column integer key is copied in batches of one transaction each, and a copy
run again continues after the destination's highest key.  A table with a composite key (derived tables,
pull requests, failure lines) is copied in one transaction, so it is either complete or empty.

Which destinations are accepted: an empty one (no row in any copied table), or a partial copy of this
source.  A destination table with rows is a partial copy when its rows are the source's first rows in key
order: integer key: as many rows as the source has up to the destination's highest key; composite key:
as many rows as the source; and in both cases the first and the last row equal the source's value for
value.  Anything else (another store, a store the server has written to since) is refused before any row
is written (the destination is only migrated): drop the destination database to start over.

Verified: then each table's rows are read from both stores in key order (text in byte order on both),
each row normalised (a float column's values as floats, a binary value as its length and SHA-256, then
the row's `repr`: NULL, integers, floats and text each unambiguous) into a SHA-256 per table; counts and
checksums are printed side by side, with the first key that differs, and the command exits 1 on any
difference (2 when it refused to copy).
"""
import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from itertools import zip_longest

from sqlalchemy import Table, func, inspect, select
from sqlalchemy.engine import Connection, Engine

from store.engine import analyze, database_url, is_sqlite, make_engine, writer_options
from store.sqlfunctions import byte_order, reset_sequence

BATCH_ROWS = 5000
BATCH_BYTES = 16 * 2 ** 20
PROGRESS_SECONDS = 5.0
KEPT_BY_DESTINATION = ("export_lines",)


class Refused(Exception):
    """The destination holds rows that are not a partial copy of the source, or the stores' schemas differ."""


class Interrupted(Exception):
    """Raised by `copy(fail_after_batches=N)` after N batches: a crash, for the tests."""


@dataclass
class TableCheck:
    name: str
    source_rows: int
    destination_rows: int
    source_sum: str
    destination_sum: str
    first_difference: tuple | None = None  # the key of the first row that differs (None: none, or counts only)

    @property
    def equal(self) -> bool:
        return self.source_rows == self.destination_rows and self.source_sum == self.destination_sum


@dataclass
class Report:
    copied: dict = field(default_factory=dict)  # table -> rows copied by this run
    seconds: float = 0.0
    checks: list = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(check.equal for check in self.checks)


@dataclass
class Store:
    """A store's engine, and the engine its inbox table lives in (None: no inbox to copy)."""
    location: str
    engine: Engine
    inbox: Engine | None

    def dispose(self) -> None:
        if self.inbox is not None and self.inbox is not self.engine:
            self.inbox.dispose()
        self.engine.dispose()


def tables(with_inbox: bool) -> list[Table]:
    """The tables copied, in foreign-key order (a table after those it refers to)."""
    from store import inbox, schema

    found = [t for t in schema.metadata.sorted_tables if t.name not in KEPT_BY_DESTINATION]
    return found + [inbox.inbox] if with_inbox else found


def open_source(location: str, inbox_path: str = "") -> Store:
    from store import inbox

    engine = make_engine(location)
    box = None
    if is_sqlite(engine):
        path = inbox.inbox_location(location, inbox_path)
        if os.path.exists(path):
            box = make_engine(path)
    elif inspect(engine).has_table("inbox"):
        box = engine
    if box is not None and not inspect(box).has_table("inbox"):
        box = None
    if box is not None:  # an inbox of an older version gains its (empty) repository keys, as a server's would
        with box.connect().execution_options(**writer_options()) as conn, conn.begin():
            inbox.create(conn)
    return Store(location, engine, box)


def open_destination(location: str, with_inbox: bool, inbox_path: str = "") -> Store:
    """The destination, migrated, with its inbox table created when one is copied."""
    from store import inbox
    from store.migrate import upgrade

    engine = make_engine(location)
    upgrade(engine)
    box = None
    if with_inbox:
        box = engine if not is_sqlite(engine) else make_engine(inbox.inbox_location(location, inbox_path))
        with box.connect().execution_options(**writer_options()) as conn, conn.begin():
            inbox.create(conn)
    return Store(location, engine, box)


def _revision(engine: Engine) -> str | None:
    from store.migrate import _stamped

    return _stamped(engine)


# --- keys, order and values -------------------------------------------------------------------------------

def key_columns(table: Table) -> list:
    return list(table.primary_key.columns)


def serial_key(table: Table):
    """The table's key column when it is one integer (copied in batches, resumed after its highest value)."""
    key = key_columns(table)
    return key[0] if len(key) == 1 and key[0].type.python_type is int else None


def _order(conn: Connection, table: Table) -> list:
    return [byte_order(conn, column) for column in key_columns(table)]


def _kinds(table: Table) -> list:
    return [column.type.python_type for column in table.columns]


def encoder(table: Table):
    """A function of a row giving its values as bytes, normalised the same way whichever store they were read
    from: a float column's numbers as floats, a binary value as its length and SHA-256 (its `repr` would take
    four times its size: a 20 MB body, 80 MB); then the tuple's `repr` (unambiguous for None, int, float and
    str; a float's repr gives it back exactly)."""
    fixes = [(i, float if kind is float else _blob) for i, kind in enumerate(_kinds(table)) if kind in (float, bytes)]

    def encode(row) -> bytes:
        values = list(row)
        for i, kind in fixes:
            if values[i] is not None:
                values[i] = kind(values[i])
        return repr(tuple(values)).encode("utf-8", "surrogatepass")
    return encode


def _blob(value) -> tuple:
    return len(value), hashlib.sha256(value).hexdigest()


def _fetch_rows(table: Table) -> int:
    """Rows read at a time: few when the table holds blobs (a delivery body may be 25 MB)."""
    return 1 if bytes in _kinds(table) else 1000


def _size(row) -> int:
    return sum(len(v) if isinstance(v, (str, bytes, bytearray, memoryview)) else 8 for v in row)


def _rows(conn: Connection, table: Table, statement):
    """The statement's rows, read a few at a time (a server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=_fetch_rows(table)).execute(statement)
    for part in result.partitions():
        yield from part


# --- is the destination empty, a partial copy, or another store? -----------------------------------------

def _edge_rows(conn: Connection, table: Table, last_key=None):
    """The first and the last row in key order (the last at or below `last_key` when given)."""
    order = _order(conn, table)
    query = select(table)
    if last_key is not None:
        query = query.where(serial_key(table) <= last_key)
    first = conn.execute(query.order_by(*order).limit(1)).first()
    last = conn.execute(query.order_by(*(o.desc() for o in order)).limit(1)).first()
    return first, last


def destination_state(src: Connection, dst: Connection, table: Table) -> int | None:
    """The highest key the destination holds of a serially copied table (None: empty); for a composite key,
    its row count (0: empty).  Raises Refused when its rows are not the source's first rows."""
    key = serial_key(table)
    count = dst.execute(select(func.count()).select_from(table)).scalar()
    highest = dst.execute(select(func.max(key))).scalar() if key is not None and count else None
    if not count:
        return None if key is not None else 0
    if key is not None:
        expected = src.execute(select(func.count()).select_from(table).where(key <= highest)).scalar()
        edges = _edge_rows(src, table, highest), _edge_rows(dst, table)
    else:
        expected = src.execute(select(func.count()).select_from(table)).scalar()
        edges = _edge_rows(src, table), _edge_rows(dst, table)
    encode = encoder(table)
    same = [a is not None and b is not None and encode(a) == encode(b) for a, b in zip(*edges)]
    if count != expected or not all(same):
        what = (f"{count} rows where the source has {expected}" if count != expected
                else f"its {'first' if not same[0] else 'last'} row differs from the source's")
        raise Refused(f"the destination's {table.name} is not a partial copy of the source ({what}): it holds "
                      f"another store, or one written to since; drop it (or give an empty database) to copy anew")
    return highest if key is not None else count


# --- copy -------------------------------------------------------------------------------------------------

class _Progress:
    def __init__(self, out, name: str, total: int, done: int):
        self.out, self.name, self.total, self.done = out, name, total, done
        self.copied = 0
        self.start = self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.copied += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.out(f"  {self.name:<22} {self.done + self.copied:>12,} / {self.total:,} rows, "
                     f"{self.copied / (now - self.start):,.0f} rows/s")

    def finish(self, note: str = "") -> None:
        seconds = time.monotonic() - self.start
        rate = f"{self.copied / seconds:>10,.0f} rows/s" if self.copied and seconds > 0 else f"{'':>17}"
        self.out(f"  {self.name:<22} {self.copied:>12,} rows copied {seconds:>7.1f} s {rate}"
                 + (f"  ({note})" if note else ""))


def _batches(rows, batch_rows: int, batch_bytes: int):
    batch, size = [], 0
    for row in rows:
        batch.append(row)
        size += _size(row)
        if len(batch) >= batch_rows or size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def copy(source: str, destination: str, *, inbox_path: str = "", destination_inbox_path: str = "",
         batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES, fail_after_batches: int | None = None,
         verify_after: bool = True, out=print) -> Report:
    """Copy `source` into `destination` (each as DATABASE_PATH takes it), continuing a copy that stopped;
    then verify.  Raises Refused (no row written) when the destination holds rows of another store."""
    if database_url(source) == database_url(destination):
        raise Refused("the source and the destination are the same store")
    src = open_source(source, inbox_path)
    dst = None
    try:
        dst = open_destination(destination, src.inbox is not None, destination_inbox_path)
        revisions = _revision(src.engine), _revision(dst.engine)
        if revisions[0] != revisions[1]:
            raise Refused(f"the source's schema is at revision {revisions[0]}, the destination's at {revisions[1]}: "
                          f"upgrade the source first (python init_db.py -db SOURCE)")
        report = Report()
        started = time.monotonic()
        with _connections(src) as (src_store, src_inbox), _connections(dst, write=True) as (dst_store, dst_inbox):
            plan = [(t, src_inbox if t.name == "inbox" else src_store, dst_inbox if t.name == "inbox" else dst_store)
                    for t in tables(src.inbox is not None)]
            states = {}
            for table, s, d in plan:  # every table checked before anything is written
                with d.begin():
                    states[table.name] = destination_state(s, d, table)
            resumed = any(v for v in states.values())
            out(f"copying {_safe(source)} -> {_safe(destination)}" + (" (resuming)" if resumed else ""))
            batches = 0
            for table, s, d in plan:
                total = s.execute(select(func.count()).select_from(table)).scalar()
                state = states[table.name]
                key = serial_key(table)
                if key is None and state:
                    progress = _Progress(out, table.name, total, state)
                    progress.finish("complete before")
                    report.copied[table.name] = 0
                    continue
                done = 0 if key is None or state is None else \
                    s.execute(select(func.count()).select_from(table).where(key <= state)).scalar()
                progress = _Progress(out, table.name, total, done)
                query = select(table).order_by(*_order(s, table))
                if key is not None and state is not None:
                    query = query.where(key > state)
                columns = [c.name for c in table.columns]
                insert = table.insert()
                # A composite key's table in one transaction; a serial key's, one per batch.
                outer = d.begin() if key is None else None
                try:
                    for batch in _batches(_rows(s, table, query), batch_rows, batch_bytes):
                        values = [dict(zip(columns, row)) for row in batch]
                        if outer is None:
                            with d.begin():
                                d.execute(insert, values)
                        else:
                            d.execute(insert, values)
                        del values
                        progress.add(len(batch))
                        batches += 1
                        if fail_after_batches is not None and batches >= fail_after_batches:
                            raise Interrupted(f"stopped after {batches} batches (in {table.name})")
                    if outer is not None:
                        outer.commit()
                finally:
                    if outer is not None and outer.is_active:
                        outer.rollback()
                with d.begin():
                    reset_sequence(d, table)
                progress.finish("complete before" if done and not progress.copied else "continued" if done else "")
                report.copied[table.name] = progress.copied
            report.seconds = time.monotonic() - started
            rows = sum(report.copied.values())
            out(f"copied {rows:,} rows in {report.seconds:.1f} s ({rows / max(report.seconds, 1e-9):,.0f} rows/s)")
            started = time.monotonic()
            analyze(dst_store)
            out(f"planner statistics gathered (ANALYZE) in {time.monotonic() - started:.1f} s")
            if verify_after:
                report.checks = verify_tables(plan, out=out)
        return report
    finally:
        src.dispose()
        if dst is not None:
            dst.dispose()


class _connections:
    """A store's connection and its inbox's (the same one when the inbox is a table of the store), each in a
    transaction for reading: the source is read from one snapshot."""

    def __init__(self, store: Store, write: bool = False):
        self.store, self.write = store, write
        self.opened = []

    def __enter__(self):
        options = writer_options() if self.write else {}
        conn = self.store.engine.connect().execution_options(**options)
        self.opened.append(conn)
        box = None
        if self.store.inbox is self.store.engine:
            box = conn
        elif self.store.inbox is not None:
            box = self.store.inbox.connect().execution_options(**options)
            self.opened.append(box)
        if not self.write:
            for c in self.opened:
                c.begin()
        return conn, box

    def __exit__(self, *exc):
        for conn in self.opened:
            conn.close()  # rolls back what is open: the source was only read


def _safe(location: str) -> str:
    """A location without its password, for printing."""
    if "://" not in location:
        return location
    from sqlalchemy.engine import make_url

    return make_url(location).render_as_string(hide_password=True)


# --- verify -----------------------------------------------------------------------------------------------

def _digest(conn: Connection, table: Table):
    """(key, encoded row) per row, in key order."""
    encode = encoder(table)
    positions = [list(table.columns).index(column) for column in key_columns(table)]
    for row in _rows(conn, table, select(table).order_by(*_order(conn, table))):
        yield tuple(row[i] for i in positions), encode(row)


def digest(conn: Connection, table: Table) -> tuple[int, str]:
    """The table's rows and the SHA-256 of them in key order (as `check_table` compares two stores)."""
    sha, n = hashlib.sha256(), 0
    for _key, encoded in _digest(conn, table):
        sha.update(encoded)
        n += 1
    return n, sha.hexdigest()[:16]


def check_table(src: Connection, dst: Connection, table: Table) -> TableCheck:
    hashes = hashlib.sha256(), hashlib.sha256()
    counts = [0, 0]
    first = None
    for a, b in zip_longest(_digest(src, table), _digest(dst, table)):
        for i, item in enumerate((a, b)):
            if item is not None:
                counts[i] += 1
                hashes[i].update(item[1])
        if first is None and (a is None or b is None or a[1] != b[1]):
            first = (a or b)[0]
    return TableCheck(table.name, counts[0], counts[1], hashes[0].hexdigest()[:16], hashes[1].hexdigest()[:16], first)


def verify_tables(plan, out=print) -> list[TableCheck]:
    out(f"verifying: {'table':<22} {'source rows':>12} {'dest rows':>12}  {'source sha256':<16}  "
        f"{'dest sha256':<16}")
    checks = []
    for table, s, d in plan:
        if d.in_transaction():
            d.rollback()
        with d.begin():
            check = check_table(s, d, table)
        checks.append(check)
        verdict = "equal" if check.equal else f"DIFFERENT (first at key {check.first_difference})"
        out(f"           {check.name:<22} {check.source_rows:>12,} {check.destination_rows:>12,}  "
            f"{check.source_sum:<16}  {check.destination_sum:<16}  {verdict}")
    return checks


def verify(source: str, destination: str, *, inbox_path: str = "", destination_inbox_path: str = "",
           out=print) -> list[TableCheck]:
    """Compare every copied table of two stores (counts and checksums), copying nothing."""
    src = open_source(source, inbox_path)
    dst = None
    try:
        dst = open_destination(destination, src.inbox is not None, destination_inbox_path)
        with _connections(src) as (src_store, src_inbox), _connections(dst, write=True) as (dst_store, dst_inbox):
            plan = [(t, src_inbox if t.name == "inbox" else src_store, dst_inbox if t.name == "inbox" else dst_store)
                    for t in tables(src.inbox is not None)]
            return verify_tables(plan, out=out)
    finally:
        src.dispose()
        if dst is not None:
            dst.dispose()


# --- command ----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m store.copy",
        description="Copy a store (e.g. SQLite) into another (e.g. PostgreSQL), then compare every table's rows "
                    "(counts and checksums). Stop the server first. Run the same command again to continue a copy "
                    "that stopped. Exit status: 0 equal, 1 a table differs, 2 refused (the destination holds "
                    "another store's rows), 130 interrupted.")
    p.add_argument("source", help="the store to copy: a SQLite path or a URL (as DATABASE_PATH takes it)")
    p.add_argument("destination", help="the store to copy into, e.g. postgresql://user@host/buildmon: migrated "
                                       "first; empty, or a copy of SOURCE that stopped")
    p.add_argument("--inbox", default=os.environ.get("INBOX_PATH", ""), metavar="PATH",
                   help="the source's inbox file, when SOURCE is SQLite (default: $INBOX_PATH, else beside SOURCE)")
    p.add_argument("--batch", type=int, default=BATCH_ROWS, metavar="N",
                   help=f"rows per batch (one transaction each; default {BATCH_ROWS})")
    p.add_argument("--verify-only", action="store_true", help="compare the two stores, copy nothing")
    args = p.parse_args(argv)
    if args.batch < 1:
        p.error("--batch must be >= 1")
    out = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if args.verify_only:
            checks = verify(args.source, args.destination, inbox_path=args.inbox, out=out)
        else:
            checks = copy(args.source, args.destination, inbox_path=args.inbox, batch_rows=args.batch, out=out).checks
    except Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: what was copied is kept; run the same command again to continue", file=sys.stderr)
        return 130
    differ = [check.name for check in checks if not check.equal]
    rows = sum(check.source_rows for check in checks)
    if differ:
        print(f"DIFFERENT: {', '.join(differ)} ({len(differ)} of {len(checks)} tables)", file=sys.stderr)
        return 1
    print(f"equal: {len(checks)} tables, {rows:,} rows, counts and checksums the same on both stores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
