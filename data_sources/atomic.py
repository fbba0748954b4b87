"""Atomic writes, and folders that a command publishes without destroying anything it did not write.

Files: ``atomic_path`` writes to a temporary file beside the target, then renames
it, so a crash, a kill or Ctrl-C mid-write leaves the previous file untouched (or
no file), never a half-written one. The target must be a regular file or absent:
a directory, a device (``/dev/null``) or a FIFO is refused, never replaced. New
files get the mode the user's umask gives (not the 0600 of a temporary file).

Folders: ``publish_dir(out, kind)`` yields a staging folder beside ``out``; when the
``with`` block succeeds, the staging folder (with a marker file naming its kind)
replaces ``out``. An existing ``out`` is replaced only when it is empty or holds a
previous output of the same kind (its marker), so ``--out`` pointed at a run, a
home folder or a device is refused before any work is done. ``claim_dir`` is the
same rule for outputs that are filled in place and resumed (a backtest).

A staging or backup folder left by a process that was killed (SIGKILL, power
loss) is cleaned up by the next publish to the same ``out``: a backup whose new
output never landed is put back, anything else is removed.

Every layer that writes user-visible files (store, checkpoints, exports, reports,
forecast folders) goes through these helpers.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from data_sources.errors import UserError

MARKER = ".forecaster-output.json"


class OutputError(UserError):
    """An output path that cannot be written without destroying something the command did not write."""


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded): os.umask is process-wide, and toggling it
# later from a dashboard worker thread could race with another thread creating files.
_UMASK = _read_umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def check_file_target(path: str | os.PathLike, option: str = "output") -> Path:
    """Refuse an output file path that exists and is not a regular file (a folder, a device, a FIFO, a socket)."""
    target = Path(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(f"{option} {target}: cannot use it ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{option} {target} is an existing folder; give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{option} {target} exists and is not a regular file (a device or pipe); "
                          "choose another path")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The caller writes the whole file to the yielded path (any writer that takes a
    path works: ``DataFrame.to_parquet``, ``torch.save``, ``safetensors``). On an
    exception the temporary file is removed and ``path`` is left as it was. An
    existing ``path`` that is not a regular file is refused (``OutputError``).
    """
    target = check_file_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, FILE_MODE)
        check_file_target(target)  # it may have become a folder or device while we wrote
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


# -- published folders ----------------------------------------------------------------------------

def output_kind(folder: str | os.PathLike) -> str | None:
    """The kind named by a folder's marker file (``None`` when it has none or it is unreadable)."""
    try:
        doc = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return doc.get("kind") if isinstance(doc, dict) else None


def _describe(kind: str) -> str:
    return f"a {kind} output" if kind[0] not in "aeiou" else f"an {kind} output"


def check_out_dir(out: str | os.PathLike, kind: str, option: str = "--out") -> Path:
    """Refuse ``out`` unless it is absent, an empty folder, or a folder holding a previous output of ``kind``."""
    out = Path(out)
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot use it ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{option} {out} is a symbolic link; give the real folder or a new name")
    if not stat.S_ISDIR(st.st_mode):
        what = "file" if stat.S_ISREG(st.st_mode) else "device or special file"
        raise OutputError(f"{option} {out} is an existing {what}, not a folder; choose another path")
    found = output_kind(out)
    if found == kind:
        return out
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot read the folder ({exc.strerror})") from None
    if empty:
        return out
    what = _describe(found) if found else "an output of this command"
    raise OutputError(f"{option} {out}: the folder exists and is not {_describe(kind)} (it is {what}); "
                      "choose another folder or remove it")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path) -> Iterator[tuple[Path, str, int]]:
    """Staging/backup folders beside ``out`` named by ``publish_dir``: (path, role, pid)."""
    prefix = f".{out.name}."
    if not out.parent.is_dir():
        return
    for p in out.parent.iterdir():
        name = p.name
        if not name.startswith(prefix):
            continue
        role, _, rest = name[len(prefix):].partition("-")
        if role not in ("staging", "old"):
            continue
        try:
            yield p, role, int(rest.split("-")[0])
        except ValueError:
            continue


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove what a killed ``publish_dir`` left beside ``out``; a backup whose replacement never landed is restored."""
    out = Path(out)
    cleaned = []
    for p, role, pid in sorted(_leftovers(out), key=lambda t: t[1] != "old"):
        if _pid_alive(pid) and pid != os.getpid():
            continue  # another command is publishing this folder right now
        if role == "old" and not out.exists() and output_kind(p) is not None:
            p.rename(out)  # killed between the two renames: the previous output comes back
        else:
            shutil.rmtree(p, ignore_errors=True)
        cleaned.append(p)
    return cleaned


def _write_marker(folder: Path, kind: str, extra: dict | None = None) -> None:
    write_text(folder / MARKER, json.dumps({"kind": kind, **(extra or {})}, indent=1) + "\n")


@contextlib.contextmanager
def publish_dir(out: str | os.PathLike, kind: str, option: str = "--out") -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``out`` (see the module doc for the rules).

    ``out`` is checked on entry, so a refused folder costs no work, and again just
    before the swap. On an exception the staging folder is removed and ``out`` is
    left as it was.
    """
    out = check_out_dir(out, kind, option)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{os.getpid()}-", dir=out.parent))
    try:
        os.chmod(staging, DIR_MODE)
        yield staging
        _write_marker(staging, kind)
        check_out_dir(out, kind, option)
        backup = None
        if out.exists():
            backup = out.with_name(f".{out.name}.old-{os.getpid()}-{staging.name.rsplit('-', 1)[-1]}")
            out.rename(backup)
        staging.rename(out)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def claim_dir(out: str | os.PathLike, kind: str, option: str = "--out") -> Path:
    """Create (or reuse) ``out`` as an output of ``kind`` that is filled in place, e.g. a resumable backtest."""
    out = check_out_dir(out, kind, option)
    out.mkdir(parents=True, exist_ok=True)
    if output_kind(out) != kind:
        _write_marker(out, kind)
    return out
