"""Training traces: each player appends its own Parquet files; readers stitch them with pyarrow.dataset."""

from __future__ import annotations

import io
import time
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as fs
import pyarrow.parquet as pq

from storage.files import join, resolve, write_atomically

if TYPE_CHECKING:  # imported where read: players only write, and it takes a second to import
    import pyarrow.dataset as ds

TRACE_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("player", pa.string()),
    ("individual", pa.string()),
    ("generation", pa.int32()),
    ("step", pa.int64()),
    ("g_loss", pa.float64()),
    ("d_loss", pa.float64()),
    ("time", pa.timestamp("us", tz="UTC")),
    ("phase", pa.string()),  # train: the pair on its own; cross: against pulled opponents
])


class TraceWriter:
    """Buffers one player's rows and writes them as a new Parquet file every `flush_rows` rows or
    `flush_seconds` seconds (fewer, larger files read faster), and on close."""

    def __init__(self, directory: str, run_id: str, player: str, flush_rows: int = 5000, flush_seconds: float = 10.0):
        self.directory, self.run_id, self.player = directory, run_id, player
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        filesystem, path = resolve(directory)
        filesystem.create_dir(path, recursive=True)
        self._columns: dict[str, list] = {name: [] for name in TRACE_SCHEMA.names}
        self._last_flush = time.monotonic()
        self.rows_written = 0

    def add(self, individual: str, generation: int, rows: list[dict], phase: str = "train") -> None:
        for row in rows:
            self._columns["phase"].append(phase)
            self._columns["run_id"].append(self.run_id)
            self._columns["player"].append(self.player)
            self._columns["individual"].append(individual)
            self._columns["generation"].append(generation)
            for name in ("step", "g_loss", "d_loss"):
                self._columns[name].append(row[name])
            self._columns["time"].append(int(row["time"] * 1_000_000))
        if len(self._columns["step"]) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        count = len(self._columns["step"])
        if not count:
            return
        table = pa.table({name: pa.array(values, type=TRACE_SCHEMA.field(name).type)
                          for name, values in self._columns.items()}, schema=TRACE_SCHEMA)
        # A unique name per file: a restarted player never overwrites what it wrote before.
        self._write(f"{self.player}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet", table)
        self.rows_written += count
        self._columns = {name: [] for name in TRACE_SCHEMA.names}

    def close(self) -> None:
        self.flush()

    def _write(self, name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        write_atomically(join(self.directory, name), buffer.getvalue())

    def drop_unrecorded(self, last_recorded: int) -> int:
        """Remove this player's rows of generations after `last_recorded` from the files on disk, and
        return how many: a player killed after writing an individual's rows but before its record
        reached the store leaves rows nobody claims, and its restart reuses that individual's number.
        Files are visited newest first (their names carry the time of writing) and the visit stops at
        the first holding no such row: a generation is written after every one before it."""
        filesystem, path = resolve(self.directory)
        files = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
        mine = [f for f in files if f.base_name.startswith(f"{self.player}-") and f.base_name.endswith(".parquet")]
        dropped = 0
        for info in sorted(mine, key=lambda f: int(f.base_name[len(self.player) + 1:].split("-")[0]), reverse=True):
            with filesystem.open_input_file(info.path) as handle:
                table = pq.read_table(handle)
            keep = table.filter(pc.less_equal(table["generation"], last_recorded))
            if keep.num_rows == table.num_rows:
                break
            dropped += table.num_rows - keep.num_rows
            if keep.num_rows:
                self._write(info.base_name, keep)
            else:
                filesystem.delete_file(info.path)
        return dropped


def trace_dataset(directory: str) -> ds.Dataset:
    """All players' trace files of a run as one `pyarrow.dataset.Dataset` with `TRACE_SCHEMA`, read
    lazily: filter and project before `to_table()`. The folder is plain Parquet, so pandas
    (`pd.read_parquet(folder)`), polars (`pl.scan_parquet(f"{folder}/*.parquet")`) and DuckDB
    (`SELECT ... FROM 'folder/*.parquet'`) read it as well, without this code. A folder with no file yet
    (a run that has not flushed any) is an empty dataset. Files a player is still writing never show:
    each appears whole, by an atomic rename."""
    import pyarrow.dataset as ds

    filesystem, path = resolve(directory)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        return ds.dataset([], schema=TRACE_SCHEMA, format="parquet")
    # Files whose names start with "." or "_" are skipped: a file being written has a leading dot.
    return ds.dataset(path, filesystem=filesystem, format="parquet", schema=TRACE_SCHEMA)


def read_traces(directory: str, columns: list[str] | None = None) -> pa.Table:
    """All players' traces of a run as one table (only `columns`, when given)."""
    return trace_dataset(directory).to_table(columns=columns)
