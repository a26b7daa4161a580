"""A scores file (CSV or parquet) written in chunks, resumable, and never half-written under its name.

While a job runs, each chunk of rows goes atomically into its own parquet part in a hidden folder
beside the output (`.scores.csv.parts/`), with a job.json naming the model. A part counts only once
it has its final name (`000003.parquet`, after a rename); a temporary (`.000003.<writer>.tmp.parquet`)
left by a killed job never matches and is swept when the next job opens the folder. A killed job
therefore loses at most the chunk it was writing; `resume=True` reads the finished parts (and a
finished output file, when the job is re-run over a grown archive) and skips the images that already
have a score, knowing each image by its real path (`photos/a.jpg` and `./photos/a.jpg` are one file).
Only when every image is done are the rows merged, one part at a time so memory stays bounded, into a
temporary file that is renamed over the output; the parts folder is then removed. Just before that
rename, `committed.json` records which file is about to take the output's name: a job killed after
the rename but before the parts were removed is recognised as finished, so a --resume does not count
its rows twice (and rows of one image met twice are kept once in any case).

Rows whose `error` is set (files that failed to decode) are not kept by a resumed job: the file is
tried again, since it may have been half-copied the first time.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skinpamper.atomic import replace_into, sweep_temporaries, write_json_atomic
from skinpamper.errors import ConfigError, DataError
from skinpamper.locks import OutputLock
from skinpamper.serving.predict import display_name
from skinpamper.serving.rows import ERROR, IMAGE, MODEL_ID, csv_cell, text_of_csv_cell

SUFFIXES = (".csv", ".parquet")
JOB_FILE = "job.json"
COMMIT_FILE = "committed.json"  # written just before the merged output takes its name
PARTS = "[0-9]*.parquet"  # finished parts only: temporaries start with a dot
PARQUET_KEY = b"skinpamper"  # the parquet schema metadata entry holding {"model_id": ...}
READ_ROWS = 65_536  # rows read at a time from a previous output while merging or resuming


def parts_folder(out: Path) -> Path:
    """Where the finished chunks of an unfinished job on `out` wait."""
    return out.parent / f".{out.name}.parts"


class ScoreFile:
    """The output of one scoring job: `done` says which images to skip; `write` then `finish`.

    The job holds the output's lock from here until `finish` or `close` (or its process ends): a
    second job on the same output refuses before it reads or writes anything.
    """

    def __init__(self, out: str | Path, model_id: str, resume: bool = False) -> None:
        self.out, self.model_id = Path(out), model_id
        self.parts = parts_folder(self.out)
        _check_target(self.out)
        self.lock = OutputLock(self.out)
        try:
            self._open(resume)
        except BaseException:
            self.lock.release()
            raise

    def __enter__(self) -> ScoreFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Let the next job in; the parts written so far stay for a --resume."""
        self.lock.release()

    def _open(self, resume: bool) -> None:
        sweep_temporaries(self.out.parent, glob.escape(self.out.stem))
        if self.parts.is_dir():
            sweep_temporaries(self.parts)
            self._drop_committed_parts()
        if not resume and any(self.parts.glob(PARTS)):
            raise ConfigError(
                f"{self.out}: an unfinished job's rows are in {self.parts}; add --resume to keep them, "
                "or delete that folder to start again"
            )
        self.previous = self.out if resume and self.out.exists() else None
        self.old_parts = sorted(self.parts.glob(PARTS)) if resume else []
        self._check_model()
        self.done: set[str] = set()  # image_key of every image with a successful row
        for table in self._old_tables():
            self.done.update(map(image_key, table.column(IMAGE).to_pylist()))
        self.parts.mkdir(exist_ok=True)
        write_json_atomic(self.parts / JOB_FILE, {MODEL_ID: self.model_id, "out": self.out.name})
        self._next = max((int(part.stem) for part in self.old_parts), default=-1) + 1

    def has(self, image: str) -> bool:
        """Whether `image` (a path in any spelling, or a URI) already has a successful row."""
        return image_key(image) in self.done

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Keep one chunk of rows: after this returns, a killed job no longer loses them."""
        if not rows:
            return
        table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
        part = self.parts / f"{self._next:06d}.parquet"
        replace_into(part, lambda path: pq.write_table(table, path))
        self._next += 1

    def finish(self) -> None:
        """Merge the kept rows of earlier runs and this run's parts into the output, atomically."""
        new_parts = sorted(set(self.parts.glob(PARTS)) - set(self.old_parts))
        schemas = [pq.read_schema(part) for part in [*self.old_parts, *new_parts]]
        schemas += [_output_schema(self.previous)] if self.previous else []
        tables = _unique(_chain(self._old_tables(), (pq.read_table(part) for part in new_parts)))
        commit = self.parts / COMMIT_FILE
        if self.out.suffix == ".parquet":
            schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
            schema = schema.with_metadata({PARQUET_KEY: json.dumps({MODEL_ID: self.model_id}).encode()})
            replace_into(
                self.out,
                lambda path: _write_parquet(path, schema, tables),
                lambda path: _commit(commit, path),
            )
        else:
            # A previous CSV is read back as text, so only the column names need to agree.
            names = list(dict.fromkeys(name for s in schemas for name in s.names))
            replace_into(
                self.out, lambda path: _write_csv(path, names, tables), lambda path: _commit(commit, path)
            )
        shutil.rmtree(self.parts)
        self.close()

    def _old_tables(self) -> Iterator[pa.Table]:
        """The successful rows of the previous output and of earlier runs' parts."""
        sources = [_read_output(self.previous)] if self.previous else []
        sources += [(pq.read_table(part) for part in self.old_parts)]
        for table in _chain(*sources):
            yield table.filter(_succeeded(table))

    def _drop_committed_parts(self) -> None:
        """Remove the parts of a job killed after its output took its name: they are all in it."""
        commit = self.parts / COMMIT_FILE
        if not commit.exists():
            return
        if self.out.exists() and json.loads(commit.read_text(encoding="utf-8")) == _identity(self.out):
            shutil.rmtree(self.parts)
        else:  # killed before the rename: the parts are still the only copy of the rows
            commit.unlink()

    def _check_model(self) -> None:
        """Refuse to mix two models' scores in one file."""
        found: set[str] = set()
        job = self.parts / JOB_FILE
        if self.old_parts and job.exists():
            found.add(json.loads(job.read_text(encoding="utf-8"))[MODEL_ID])
        if self.previous is not None:
            _output_schema(self.previous)
            for table in _read_output(self.previous):
                found.update(v for v in table.column(MODEL_ID).to_pylist() if v)
        others = sorted(found - {self.model_id})
        if others:
            raise ConfigError(
                f"{self.out}: written by model {', '.join(others)}, not {self.model_id}; "
                "--resume only continues a job of the same model (choose another --out)"
            )


def _check_target(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{out}: the output must end in .csv or .parquet")
    if not out.parent.is_dir():
        raise ConfigError(f"{out}: folder {out.parent} does not exist")


def image_key(image: str) -> str:
    """What makes two rows one image's: its folder's real path and its name; a URI as it is.

    Only the folder is resolved (one lookup per folder, cached), so keying a million rows stays cheap.
    """
    image = display_name(image)
    if "://" in image:
        return image
    folder, name = os.path.split(image)
    return str(Path(_real_folder(folder), name))


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder or ".")


def _unique(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Each image's first row only: a defence against counting one image twice, whatever the cause."""
    seen: set[str] = set()
    for table in tables:
        keep = []
        for image in table.column(IMAGE).to_pylist():
            key = image_key(image)
            keep.append(key not in seen)
            seen.add(key)
        yield table.filter(pa.array(keep, pa.bool_()))


def _identity(path: Path) -> list[int]:
    """Which file is at `path`: a rename keeps it, a new file would not have it."""
    info = path.stat()
    return [info.st_dev, info.st_ino, info.st_size]


def _commit(marker: Path, merged: Path) -> None:
    write_json_atomic(marker, _identity(merged))


def _chain(*sources: Iterator[pa.Table]) -> Iterator[pa.Table]:
    for source in sources:
        yield from source


def _read_output(path: Path) -> Iterator[pa.Table]:
    """A finished scores file, a block at a time, as Arrow tables (CSV cells kept as written)."""
    try:
        if path.suffix == ".parquet":
            handle = pq.ParquetFile(path)
            for batch in handle.iter_batches(batch_size=READ_ROWS):
                yield pa.Table.from_batches([batch])
            return
        for chunk in pd.read_csv(
            path, dtype=str, keep_default_na=False, chunksize=READ_ROWS, encoding="utf-8-sig"
        ):
            yield pa.Table.from_pandas(csv_text(chunk, text_of_csv_cell), preserve_index=False)
    except (pa.ArrowInvalid, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable scores file ({exc})") from None


def _output_schema(path: Path) -> pa.Schema:
    if path.suffix == ".parquet":
        schema = pq.read_schema(path)
    else:
        try:
            header = pd.read_csv(path, dtype=str, nrows=0, encoding="utf-8-sig").columns
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable scores file ({exc})") from None
        schema = pa.schema([(name, pa.string()) for name in header])
    if IMAGE not in schema.names or MODEL_ID not in schema.names:
        raise DataError(f"{path}: not a Skin Pamper scores file (no {IMAGE} and {MODEL_ID} columns)")
    return schema


def _succeeded(table: pa.Table) -> pa.Array:
    """Which rows have no error (null in parts, empty text in a CSV read back)."""
    if ERROR not in table.column_names or table.schema.field(ERROR).type == pa.null():
        return pa.array([True] * len(table))
    error = table.column(ERROR)
    return pc.or_kleene(pc.is_null(error), pc.equal(error, ""))


def csv_text(frame: pd.DataFrame, convert: Callable[[str], str]) -> pd.DataFrame:
    """`frame` with `convert` applied to the cells that hold a user's text: file names and errors."""
    for column in (IMAGE, ERROR):
        if column in frame:
            frame[column] = frame[column].map(lambda cell: convert(cell) if isinstance(cell, str) else cell)
    return frame


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns: missing ones null, present ones cast to its types."""
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _write_parquet(path: Path, schema: pa.Schema, tables: Iterator[pa.Table]) -> None:
    with pq.ParquetWriter(path, schema) as writer:
        for table in tables:
            writer.write_table(_conform(table, schema))


def _write_csv(path: Path, names: list[str], tables: Iterator[pa.Table]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        header = True
        for table in tables:
            frame = csv_text(table.to_pandas().reindex(columns=names), csv_cell)
            frame.to_csv(handle, header=header, index=False, lineterminator="\n")
            header = False
        if header:  # no rows at all: still a file with its columns
            pd.DataFrame(columns=names).to_csv(handle, index=False, lineterminator="\n")
