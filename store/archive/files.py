"""The archive's files: one Parquet file per table and batch, `ARCHIVE_DIR/YYYY-MM/<table>/part-<id>.parquet`
(zstd), with the store's column names and types (int64, float64, string, binary)."""
import os
import time
from pathlib import Path

DAY = 86400


def month_name(month: int) -> str:
    """A month (its first UTC day) as YYYY-MM."""
    return time.strftime("%Y-%m", time.gmtime(month * DAY))


def path(root: Path, month: int, table: str, part: int) -> Path:
    return root / month_name(month) / table / f"part-{part:06d}.parquet"


def _schema(table):
    """The table's columns as an Arrow schema."""
    import pyarrow as pa

    kinds = {int: pa.int64(), float: pa.float64(), str: pa.string(), bytes: pa.binary()}
    return pa.schema([pa.field(c.name, kinds[c.type.python_type], nullable=True) for c in table.columns])


def write(target: Path, table, rows: list) -> int:
    """`rows` as a Parquet file at `target`, durable before this returns; its size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(table)
    columns = list(zip(*rows))
    data = pa.Table.from_arrays([pa.array(list(values), type=field.type)
                                 for values, field in zip(columns, schema)], schema=schema)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    pq.write_table(data, temporary, compression="zstd")
    with open(temporary, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return target.stat().st_size


def read(root: Path, month: int, part: int, table) -> list[dict]:
    """The rows of one table of one batch (empty when the batch had none)."""
    import pyarrow.parquet as pq

    found = path(root, month, table.name, part)
    return pq.read_table(found).to_pylist() if found.exists() else []
