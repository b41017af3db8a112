"""Moving a job folder between the orchestrator and a node that does not see it (no shared filesystem).

Inputs go out as one tar (the freshly written job folder: config, commands, custom code); outputs come
back as a tar of the files the job created or changed (models, stats, metrics, log), so a large
pretrained checkpoint shipped in is never shipped back. Pure Python, no Ray: unit-tested on its own.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

Manifest = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


def manifest(folder: Path) -> Manifest:
    """Every regular file under ``folder`` with its size and modification time."""
    out: Manifest = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if path.is_symlink() or not path.is_file():
                continue
            out[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def pack(folder: Path, unchanged: Manifest | None = None) -> bytes:
    """A tar of ``folder`` (symlinks kept as links); files equal to ``unchanged`` (same size and mtime) skipped."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, stamp in sorted(manifest(folder).items()):
            if unchanged is not None and unchanged.get(rel) == stamp:
                continue
            tar.add(folder / rel, arcname=rel, recursive=False)
        if unchanged is None:  # inputs: keep symlinks and empty folders (models/ must exist)
            for dirpath, dirs, files in os.walk(folder):
                for name in dirs + files:
                    path = Path(dirpath) / name
                    if path.is_symlink() or (path.is_dir() and not any(path.iterdir())):
                        tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, folder: Path) -> list[str]:
    """Extract a tar made by :func:`pack` into ``folder`` (overwriting); returns the names written.

    Members that would land outside ``folder`` (absolute paths, ``..``, links pointing out) are refused."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    written = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = []
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if os.path.isabs(member.name) or (target != root and root not in target.parents):
                raise ValueError(f"refusing to extract {member.name!r} outside {folder}")
            if member.issym() or member.islnk():
                link = (target.parent / member.linkname).resolve()
                if os.path.isabs(member.linkname) and member.issym():
                    pass  # an absolute link inside a job folder points at shared data on purpose
                elif root not in link.parents and link != root:
                    raise ValueError(f"refusing link {member.name!r} -> {member.linkname!r} outside {folder}")
            if not (member.isfile() or member.isdir() or member.issym()):
                continue
            members.append(member)
        for member in members:
            target = root / member.name
            if member.isfile() and (target.is_symlink() or target.exists()) and not target.is_dir():
                target.unlink()  # replace, never write through an existing link
            tar.extract(member, root, set_attrs=member.isfile(), **_filter())
            if member.isfile():
                written.append(member.name)
    return written


def _filter() -> dict:
    # Python >= 3.12 (and 3.11.4+) warn without an explicit filter; we checked the members ourselves.
    return {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
