"""Output files: checked before any work starts, written together at the end, nothing left on failure.

:func:`check_destination` refuses, before a model is loaded, an output that could not be written (a folder
name, a suffix the writer cannot produce, a file standing where a folder should be, a folder without write
permission). :func:`publish` writes every file of a run under a temporary name beside its target, creating
missing folders, and renames them into place only when all are complete; a failure or an interruption
removes the temporaries and every folder it created, and leaves files already at the targets untouched.
Every file it publishes gets the mode the user's umask gives a new file (:func:`apply_umask`).
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from .errors import InputError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def check_folder_writable(folder: Path, what: str) -> None:
    """Raise unless ``folder`` exists as a folder we may write in, or can be created under one.

    Raises:
        InputError: a file stands where a folder is needed, or there is no write permission.
    """
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(f"the {what} cannot be written: {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"the {what} cannot be written: no permission to write in the folder {existing}.")


def check_destination(path: str | Path, what: str, suffixes: Collection[str]) -> Path:
    """Check that ``path`` can be written as a ``what`` (one of ``suffixes``, e.g. ``.mp4``); return it.

    Missing folders are fine (:func:`publish` creates them); a folder name, another suffix, a file in the
    way of a folder, or no write permission are not.

    Raises:
        InputError: naming the ``what``, the path and the reason.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"the {what} {path} is a folder; give a file name.")
    if path.suffix.lower() not in suffixes:
        raise InputError(
            f"the {what} {path} must end in {', '.join(sorted(suffixes))} (what it can be written as), "
            f"got {path.suffix or 'no suffix'!r}."
        )
    check_folder_writable(path.parent, what)
    return path


def make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = [candidate for candidate in (folder, *folder.parents) if not candidate.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def remove_folders(created: Sequence[Path]) -> None:
    """Remove folders :func:`make_folders` created, innermost first, if nothing else was put in them."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else wrote there) or already gone: leave it
            return


def staging_name(target: Path) -> Path:
    """A fresh hidden name beside ``target`` with the same suffix (writers pick the format by suffix)."""
    return target.with_name(f".{target.stem}.{secrets.token_hex(6)}.partial{target.suffix}")


STAGING_TOKEN = re.compile(r"[0-9a-f]{12}")


def remove_staged(target: Path) -> list[Path]:
    """Remove what writers of ``target`` staged and never renamed (a process killed mid-write leaves its
    temporary file behind); return what was removed. Only names :func:`staging_name` makes are touched."""
    removed = []
    prefix, suffix = f".{target.stem}.", f".partial{target.suffix}"
    for candidate in target.parent.glob(f".{glob.escape(target.stem)}.*.partial{glob.escape(target.suffix)}"):
        token = candidate.name[len(prefix) : -len(suffix)]
        if not STAGING_TOKEN.fullmatch(token):
            continue
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def file_mode() -> int:
    """The permission bits the process's umask gives a new file (0o644 under the usual umask 022)."""
    # Linux states the umask in /proc; elsewhere it can only be read by setting it and setting it back, which
    # would briefly apply to files other threads create.
    try:
        umask = int(re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)[1], 8)
    except (OSError, TypeError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def apply_umask(path: Path) -> None:
    """Give ``path`` (a file, or every file under a folder) the mode the umask gives a new file.

    Some writers make private files whatever the umask: safetensors writes through a temporary file of mode
    0600 and renames it onto the name it was given, and diffusers' ``save_pretrained`` writes with safetensors.
    """
    mode = file_mode()
    files = [path] if path.is_file() else [entry for entry in path.rglob("*") if entry.is_file()]
    for file in files:
        if not file.is_symlink():
            os.chmod(file, mode)


def publish(writes: Sequence[tuple[Path, Callable[[Path], object]]]) -> None:
    """Write several files as one: each ``write(temporary)`` beside its target, then all renamed into place.

    Raises:
        Whatever a writer raises, after removing every temporary file and every folder created here.
    """
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in writes:
            created += make_folders(target.parent)
            staged.append((staging_name(target), target))
            write(staged[-1][0])
            apply_umask(staged[-1][0])
        for temporary, target in staged:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in staged:
            if temporary.is_dir():
                shutil.rmtree(temporary, ignore_errors=True)
            else:
                temporary.unlink(missing_ok=True)
        remove_folders(created)
        raise
