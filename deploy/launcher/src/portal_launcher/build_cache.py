"""What the stack builds once per machine and every checkout reuses (the Kafka classpath, the
OpenSearch node's jars, the Jaeger binary).

An entry is named by a hash of what it was built from, never by the checkout it was built in: a
fresh clone finds the entries of an identical tree, and a change to a pom, a source file or a
go.sum gives a new name, so a stale build is never picked up. An entry appears only whole: it is
written under a unique temporary name next to its place and then renamed, so two checkouts
building at once cannot leave a half-written entry behind or mix their files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

USER_CACHE = Path(os.environ.get("PORTAL_CACHE") or Path.home() / ".cache" / "portal")


def inputs_key(root: Path, files: Iterable[Path]) -> str:
    """Hash of the files' paths (relative to ``root``) and contents: 32 hex digits."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def staging_file(final: Path) -> Path:
    """A new empty file, unique to the caller, in ``final``'s folder (so the rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent)
    os.close(fd)
    return Path(name)


def staging_dir(final: Path) -> Path:
    """A new empty folder, unique to the caller, in ``final``'s folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))


def publish(staged: Path, final: Path) -> None:
    """Put a fully written file or folder in its place in one step.

    A file replaces what is there. A folder whose place is already taken (another checkout
    published the same key first: the same content) is discarded and the first one kept.
    """
    if staged.is_dir():
        try:
            staged.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(staged, ignore_errors=True)
    else:
        os.replace(staged, final)
