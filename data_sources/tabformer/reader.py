"""Read TabFormer CSV files on the CPU in chunks of lines, with bounded memory.

The file is cut into chunks of whole lines (``chunksize`` lines each), so every
row's 1-based file line number is known; each chunk is tokenised by Arrow's CSV
parser (single-threaded: the parser then reports the line of a malformed row)
into string columns and checked by ``convert.convert_chunk``. One transaction
per line is assumed, as in the published files: a quoted line break would be
reported as malformed rows, never silently merged.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import BinaryIO, Iterator, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm.auto import tqdm

from data_sources.errors import DataError
from data_sources.tabformer.convert import convert_chunk
from data_sources.tabformer.schema import (
    BAD_ROW_COLUMNS, HEADER_LINE, PUBLISHED_COLUMNS, empty_bad_rows, empty_table,
)

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
DEFAULT_CHUNKSIZE = 200_000  # lines: ~20 MB of text; streaming peaks near 0.3 GB RSS
READ_BLOCK = 4 << 20  # bytes per read() call
SKIP_HINT = "fix the file, or read with on_error='skip' (CLI: --skip-bad-rows) to skip such rows and get a report"


class TabformerChunk(NamedTuple):
    """One typed chunk of a TabFormer file.

    table : typed rows (see ``schema``) of the lines first_line .. first_line + n_lines - 1
        that passed validation.
    bad_rows : report of the lines left out (line, column, value, reason); empty when none.
    first_line : 1-based file line number of the chunk's first line (the header is line 1).
    n_lines : number of file lines in the chunk (rows kept + bad lines).
    """

    table: pd.DataFrame
    bad_rows: pd.DataFrame
    first_line: int
    n_lines: int


def check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")


def bad_row_error(path: Path, bad: pd.Series) -> DataError:
    """The one-line DataError for one report row (line, column, value, reason)."""
    value = str(bad["value"])
    shown = repr(value if len(value) <= 80 else value[:80] + "...")
    where = f"line {bad['line']}" + (f", column {bad['column']!r}" if bad["column"] else "")
    return DataError(f"{path}: {where}: {bad['reason']}: {shown}; {SKIP_HINT}")


@contextlib.contextmanager
def open_checked(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """Open ``path`` for binary reading after the header line; yield (file, size in bytes).

    Raises DataError for a missing file, a directory, an empty file or a header
    that is not the published TabFormer header.
    """
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (the full TabFormer file is "
                        f"card_transaction.v1.csv)")
    if not path.is_file():
        raise DataError(f"{path}: not a file; pass the path of a TabFormer CSV file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes); expected the header line {HEADER_LINE!r} "
                        f"followed by transactions; re-export or re-download the file")
    with open(path, "rb") as fh:
        header = fh.readline().rstrip(b"\r\n")
        if header != HEADER_LINE.encode():
            got = header[:300].decode("utf-8", errors="replace")
            raise DataError(f"{path}: line 1: wrong header {got!r}; expected the TabFormer header "
                            f"{HEADER_LINE!r} (is this the credit-card transactions file?)")
        yield fh, size


def line_chunks(fh: BinaryIO, chunksize: int, first_line: int = 2,
                block_size: int = READ_BLOCK) -> Iterator[tuple[int, int, bytes]]:
    """Yield (first line number, number of lines, bytes) of ``chunksize`` whole lines at a time.

    The last chunk may be shorter and may lack a final newline (a truncated file).
    """
    assert chunksize >= 1, f"chunksize must be >= 1, got {chunksize}"
    line = first_line
    parts: list[bytes] = []
    counted = 0  # newlines in parts
    while True:
        block = fh.read(block_size)
        if not block:
            break
        k = block.count(b"\n")
        while counted + k >= chunksize:  # this block completes a chunk
            need = chunksize - counted
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
            cut = int(newlines[need - 1]) + 1
            parts.append(block[:cut])
            yield line, chunksize, b"".join(parts)
            line += chunksize
            parts, counted = [], 0
            block = block[cut:]
            k -= need
        if block:
            parts.append(block)
            counted += k
    rest = b"".join(parts)
    if rest:
        yield line, counted + (0 if rest.endswith(b"\n") else 1), rest


def _tokenise(data: bytes) -> tuple[pa.Table, list[tuple[int, int, str]]]:
    """Arrow CSV parse into string columns; also (row number, field count, text) of bad rows."""
    wrong_count: list[tuple[int, int, str]] = []

    def on_invalid(row) -> str:
        wrong_count.append((row.number, row.actual_columns, row.text))
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=list(PUBLISHED_COLUMNS), use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in PUBLISHED_COLUMNS},
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    return table, wrong_count


def _parse(data: bytes, first_line: int, n_lines: int, path: Path) -> tuple[pa.Table, np.ndarray, list]:
    """Tokenise whole lines into 15 string columns.

    Returns (table, line number of each table row, malformed lines as report
    tuples). Lines that are not UTF-8 or have the wrong number of fields are
    malformed; everything else is left to ``convert_chunk``.
    """
    line_no = np.arange(first_line, first_line + n_lines, dtype=np.int64)
    malformed: list[tuple[int, str, str, str]] = []
    try:
        table, wrong_count = _tokenise(data)
    except pa.ArrowInvalid as exc:
        if "UTF8" not in str(exc):
            raise DataError(f"{path}: lines {first_line}..{first_line + n_lines - 1}: cannot parse "
                            f"as CSV ({exc}); check the file is an unmodified TabFormer CSV") from exc
        # rare: find the lines that are not UTF-8, report them, parse the rest
        lines = data.split(b"\n")[:n_lines]
        ok = np.ones(n_lines, dtype=bool)
        for i, text in enumerate(lines):
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                ok[i] = False
                malformed.append((int(line_no[i]), "", text.decode("utf-8", errors="replace"),
                                  "not valid UTF-8 text"))
        data = b"".join(t + b"\n" for t, good in zip(lines, ok) if good)
        line_no = line_no[ok]
        table, wrong_count = _tokenise(data)
    if wrong_count:
        assert all(number is not None for number, _, _ in wrong_count), \
            "Arrow's serial CSV parser reports the row number of a malformed row"
        idx = np.array([number - 1 for number, _, _ in wrong_count], dtype=np.int64)
        for i, (_, fields, text) in zip(idx, wrong_count):
            malformed.append((int(line_no[i]), "", text,
                              f"expected {len(PUBLISHED_COLUMNS)} fields, found {fields}"))
        line_no = np.delete(line_no, idx)
    if table.num_rows != len(line_no):
        raise DataError(f"{path}: lines {first_line}..{first_line + n_lines - 1}: {table.num_rows} "
                        f"records in {len(line_no)} lines; a quoted field spans lines, which the "
                        f"TabFormer format does not allow; remove line breaks inside quotes")
    return table, line_no, malformed


def read_chunk(data: bytes, first_line: int, n_lines: int, path: Path) -> TabformerChunk:
    """Parse and validate one chunk of whole lines (see ``line_chunks``)."""
    raw, line_no, malformed = _parse(data, first_line, n_lines, path)
    table, bad = convert_chunk(raw, line_no)
    if malformed:
        extra = pd.DataFrame(malformed, columns=list(BAD_ROW_COLUMNS)).astype(bad.dtypes.to_dict())
        bad = pd.concat([bad, extra], ignore_index=True) if len(bad) else extra
        bad = bad.sort_values("line", kind="stable", ignore_index=True)
    return TabformerChunk(table, bad, first_line, n_lines)


def iter_tabformer(path: str | Path, *, on_error: OnError = "raise", chunksize: int = DEFAULT_CHUNKSIZE,
                   progress: bool | None = None) -> Iterator[TabformerChunk]:
    """Yield typed chunks of a TabFormer CSV file, ``chunksize`` lines at a time.

    Memory stays bounded by the chunk size (the full 24-million-line file is
    never held). ``on_error="raise"`` raises DataError at the first bad line
    (line number, column, value, what to do); ``"skip"`` leaves bad lines out
    of ``chunk.table`` and lists them in ``chunk.bad_rows``. ``progress`` shows
    a tqdm bar in bytes on stderr: ``None`` (default) only when stderr is a
    terminal (a log file gets no ``\r`` lines), ``True`` always, ``False`` never.
    """
    check_on_error(on_error)
    if chunksize < 1:
        raise ValueError(f"chunksize must be a positive number of lines, not {chunksize!r}")
    path = Path(path)
    with open_checked(path) as (fh, size), \
            tqdm(total=size, unit="B", unit_scale=True, desc=path.name, disable=None if progress is None else not progress) as bar:
        bar.update(fh.tell())
        n_bad = 0
        for first_line, n_lines, data in line_chunks(fh, chunksize):
            chunk = read_chunk(data, first_line, n_lines, path)
            if len(chunk.bad_rows):
                if on_error == "raise":
                    raise bad_row_error(path, chunk.bad_rows.iloc[0])
                n_bad += chunk.bad_rows["line"].nunique()
                bar.set_postfix(bad_lines=n_bad, refresh=False)
            bar.update(len(data))
            yield chunk


def read_all_cpu(path: Path, on_error: OnError, chunksize: int, progress: bool | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate ``iter_tabformer``: (typed table with a RangeIndex, bad-row report)."""
    tables: list[pd.DataFrame] = []
    reports: list[pd.DataFrame] = []
    for chunk in iter_tabformer(path, on_error=on_error, chunksize=chunksize, progress=progress):
        tables.append(chunk.table)
        if len(chunk.bad_rows):
            reports.append(chunk.bad_rows)
    table = pd.concat(tables, ignore_index=True) if tables else empty_table()
    report = pd.concat(reports, ignore_index=True) if reports else empty_bad_rows()
    return table, report
