"""Each run's CSV export line (`export_lines`), kept by SQLite triggers on every write path.

The lines, their formatting in SQL and the triggers that rewrite a run's line
whenever the run or its commit changes live with the export's other SQLite
code in `store/csvlines.py`: no write marks anything for them (the database
keeps them, even for a hand-made UPDATE).  A rebuild reinstalls the triggers
and refills the table from the runs (on other databases the table stays
empty and the export formats every row).
"""
from sqlalchemy.engine import Connection

from store import csvlines
from store.derived.part import Part
from store.schema import export_lines


def refresh(_conn: Connection, _keys) -> None:
    """Nothing to do: the triggers rewrote the lines in the statements that changed their runs."""


def rebuild(conn: Connection) -> None:
    csvlines.install(conn)


PART = Part(name="export_lines", tables=(export_lines,), columns=(), kinds=(), refresh=refresh, rebuild=rebuild)
