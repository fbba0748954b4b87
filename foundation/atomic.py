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
output never landed is put back, anything else is removed. In the same way a
temporary file of ``atomic_path`` left by a killed process is removed by the next
write of the same file. Names carry the writer's process id, so what a live
process (or another thread of this one) is writing is never touched.

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
import threading
from pathlib import Path
from typing import Callable, Iterator

from foundation.errors import UserError

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

# Staging folders and temporary files this process is writing now (any thread): a stale-file
# sweep skips them even though their process id is ours.
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def _active(path: Path) -> Iterator[None]:
    with _ACTIVE_LOCK:
        _ACTIVE.add(str(path))
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(str(path))


def _is_active(path: Path) -> bool:
    with _ACTIVE_LOCK:
        return str(path) in _ACTIVE


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


def _stale(path: Path, pid: int) -> bool:
    """Whether a staging/temporary ``path`` named with ``pid`` was left by a process that is gone."""
    if pid == os.getpid():
        return not _is_active(path)
    return not _pid_alive(pid)


def _cannot(option: str, target: Path, exc: OSError) -> OutputError:
    return OutputError(f"{option} {target}: cannot write there ({exc.strerror or exc})")


def path_kind(path: str | os.PathLike, option: str = "output", follow_links: bool = True) -> str | None:
    """What is at ``path``: None (nothing), "folder", "file", "link" (only when not following links) or
    "special" (a device, pipe or socket); an ``OutputError`` naming ``option`` when it cannot be looked at."""
    try:
        st = os.stat(path) if follow_links else os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot use it ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(st.st_mode) else "special"


def check_file_target(path: str | os.PathLike, option: str = "output") -> Path:
    """Refuse an output file path that exists and is not a regular file (a folder, a device, a FIFO, a socket)."""
    target = Path(path)
    kind = path_kind(target, option)
    if kind == "folder":
        raise OutputError(f"{option} {target} is an existing folder; give a file name")
    if kind == "special":
        raise OutputError(f"{option} {target} exists and is not a regular file (a device or pipe); "
                          "choose another path")
    return target


def _clean_stale_tmp(target: Path) -> None:
    """Remove temporary files of ``target`` left by killed writers (``.NAME.tmp-PID-XXXX.tmp``)."""
    prefix = f".{target.name}.tmp-"
    try:
        with os.scandir(target.parent) as it:
            entries = [(Path(e.path), e.is_file(follow_symlinks=False)) for e in it
                       if e.name.startswith(prefix) and e.name.endswith(".tmp")]
    except OSError:
        return
    for p, is_file in entries:
        try:
            pid = int(p.name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if is_file and _stale(p, pid):
            with contextlib.suppress(OSError):
                p.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, option: str = "output") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The caller writes the whole file to the yielded path (any writer that takes a
    path works: ``DataFrame.to_parquet``, ``torch.save``, ``safetensors``). On an
    exception the temporary file is removed and ``path`` is left as it was. An
    existing ``path`` that is not a regular file, or a folder that cannot be
    written, is refused (``OutputError``, naming ``option``).
    """
    target = check_file_target(path, option)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_tmp(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _cannot(option, target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _active(tmp_path):
            yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, FILE_MODE)
        check_file_target(target, option)  # it may have become a folder or device while we wrote
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


Recogniser = Callable[[Path], bool]


def check_out_dir(out: str | os.PathLike, kind: str, option: str = "--out", legacy: Recogniser | None = None) -> Path:
    """Refuse ``out`` unless it is absent, an empty folder, or a folder holding a previous output of ``kind``.

    ``legacy``: recognises an output of ``kind`` written before outputs carried a
    marker (e.g. a backtest folder with its ``backtest.json``); it is accepted too.
    """
    out = Path(out)
    there = path_kind(out, option, follow_links=False)
    if there is None:
        return out
    if there == "link":
        raise OutputError(f"{option} {out} is a symbolic link; give the real folder or a new name")
    if there != "folder":
        what = "file" if there == "file" else "device or special file"
        raise OutputError(f"{option} {out} is an existing {what}, not a folder; choose another path")
    found = output_kind(out)
    if found == kind:
        return out
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot read the folder ({exc.strerror})") from None
    if empty or (found is None and legacy is not None and legacy(out)):
        return out
    what = f"it holds {_describe(found)}" if found else "it holds files this command did not write"
    raise OutputError(f"{option} {out}: the folder exists and is not {_describe(kind)} ({what}); "
                      "choose another folder or remove it")


def _leftovers(out: Path) -> Iterator[tuple[Path, str, int]]:
    """Staging/backup folders beside ``out`` named by ``publish_dir``: (path, role, pid)."""
    prefix = f".{out.name}."
    try:
        with os.scandir(out.parent) as it:
            names = [e.name for e in it if e.name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        role, _, rest = name[len(prefix):].partition("-")
        if role not in ("staging", "old"):
            continue
        try:
            yield out.parent / name, role, int(rest.split("-")[0])
        except ValueError:
            continue


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove what a killed ``publish_dir`` left beside ``out``; a backup whose replacement never landed is restored.

    A backup (``.OUT.old-PID-X``) is what ``out`` held when a publish moved it aside,
    so when ``out`` is missing it is put back whatever it holds. Returns the paths handled.
    """
    out = Path(out)
    cleaned = []
    for p, role, pid in sorted(_leftovers(out), key=lambda t: t[1] != "old"):
        if not _stale(p, pid):
            continue  # a live process (or another thread of this one) is publishing this folder right now
        if role == "old" and not os.path.lexists(out):
            p.rename(out)  # killed between the two renames: the previous output comes back
        else:
            shutil.rmtree(p, ignore_errors=True)
        cleaned.append(p)
    return cleaned


def _write_marker(folder: Path, kind: str, extra: dict | None = None) -> None:
    write_text(folder / MARKER, json.dumps({"kind": kind, **(extra or {})}, indent=1) + "\n")


@contextlib.contextmanager
def publish_dir(out: str | os.PathLike, kind: str, option: str = "--out",
                legacy: Recogniser | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``out`` (see the module doc for the rules).

    ``out`` is checked on entry, so a refused folder costs no work, and again just
    before the swap. On an exception (Ctrl-C and SIGTERM included) the staging
    folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    clean_stale(out)  # first: a backup put back by it is then checked like any previous output
    out = check_out_dir(out, kind, option, legacy)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise _cannot(option, out, exc) from None
    backup = out.with_name(f".{out.name}.old-{os.getpid()}-{staging.name.rsplit('-', 1)[-1]}")
    moved = False
    with _active(staging), _active(backup):
        try:
            os.chmod(staging, DIR_MODE)
            yield staging
            _write_marker(staging, kind)
            check_out_dir(out, kind, option, legacy)
            if os.path.lexists(out):
                out.rename(backup)
                moved = True
            staging.rename(out)
        except BaseException:
            if moved and not os.path.lexists(out):
                backup.rename(out)  # interrupted between the two renames: the previous output stays
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if moved:
            shutil.rmtree(backup, ignore_errors=True)


def claim_dir(out: str | os.PathLike, kind: str, option: str = "--out", legacy: Recogniser | None = None) -> Path:
    """Create (or reuse) ``out`` as an output of ``kind`` that is filled in place, e.g. a resumable backtest.

    The same rule as ``publish_dir``: an existing folder must be empty, hold an
    output of ``kind`` (its marker) or be recognised by ``legacy``; the marker is
    written on the first claim.
    """
    out = check_out_dir(out, kind, option, legacy)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot(option, out, exc) from None
    if output_kind(out) != kind:
        _write_marker(out, kind)
    return out
