"""Manifests: the SHA-256 and size of every file a release or a run wrote.

One home for hashing, writing and verifying manifests, used by the release gate
(:mod:`transport.disclosure`: a ``transport.ReleaseManifest`` beside the released files)
and by the command line (a ``transport.RunManifest`` over a run's outputs). A directory
with a manifest holds exactly what the manifest lists: :func:`verify` checks that every
listed file is present and unchanged and that nothing else is there, and
:func:`listed` tells which files an earlier release or run wrote, so that only those are
ever replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError

__all__ = [
    "MANIFEST",
    "RELEASE_SCHEMA",
    "RUN_SCHEMA",
    "digest",
    "entries",
    "entry",
    "json_safe",
    "listed",
    "verify",
    "write",
]

MANIFEST = "manifest.json"
RELEASE_SCHEMA = "transport.ReleaseManifest"
RUN_SCHEMA = "transport.RunManifest"


def digest(payload: bytes) -> str:
    """The SHA-256 of ``payload``, in hex."""
    return hashlib.sha256(payload).hexdigest()


def entry(name: str, payload: bytes) -> dict[str, Any]:
    """A manifest's entry for one file: ``file``, ``sha256``, ``bytes``."""
    return {"file": name, "sha256": digest(payload), "bytes": len(payload)}


def entries(root: Path, paths: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """Entries of ``paths`` (default every file below ``root``), sorted, named relative
    to ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file()) if paths is None else sorted(paths)
    return [entry(str(p.relative_to(root)), p.read_bytes()) for p in files]


def write(directory: Path, manifest: dict[str, Any], *, indent: int = 2) -> None:
    """Write ``manifest`` as ``directory/manifest.json``."""
    text = json.dumps(manifest, indent=indent, allow_nan=False) + "\n"
    (directory / MANIFEST).write_text(text)


def listed(directory: Path, schema: str | None = None) -> set[str] | None:
    """The files a manifest in ``directory`` lists, and the manifest itself; ``None``
    when there is none, it cannot be read, or its schema is not ``schema``."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if schema is not None and data.get("schema") != schema:
            return None
        return {str(e["file"]) for e in data.get("files", [])} | {MANIFEST}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def verify(directory: str | Path) -> dict[str, Any]:
    """Check a release directory against its manifest: every file listed, present and
    unchanged (SHA-256), and nothing else there. Returns the manifest; raises
    :class:`~transport.DisclosureError` naming the file otherwise."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("schema") != RELEASE_SCHEMA:
        raise DisclosureError(f"{MANIFEST} in {str(directory)!r} is not a release manifest")
    files = {e["file"]: e for e in manifest["files"]}
    extra = sorted({p.name for p in directory.iterdir()} - set(files) - {MANIFEST})
    if extra:
        raise DisclosureError(
            f"release directory {str(directory)!r} holds file(s) not in its manifest: {extra} "
            "(rule: everything released is listed and checked)"
        )
    for name, e in files.items():
        path = directory / name
        if not path.is_file():
            raise DisclosureError(f"released file {name!r} listed in the manifest is missing")
        if digest(path.read_bytes()) != e["sha256"]:
            raise DisclosureError(
                f"released file {name!r} changed after release (SHA-256 differs from the manifest)"
            )
    return manifest


def json_safe(x: Any, *, nonfinite_as_none: bool = True) -> Any:
    """``x`` ready for ``json.dumps``: string keys, lists for tuples and arrays, Python
    scalars for numpy's, and (``nonfinite_as_none``) ``None`` for NaN and infinities,
    which strict JSON has no word for. The one converter of every file the package writes.

    >>> json_safe({"ratio": float("inf"), "s": (np.float64(0.5), float("nan")), 3: np.int64(2)})
    {'ratio': None, 's': [0.5, None], '3': 2}
    """
    if isinstance(x, Mapping):
        return {str(k): json_safe(v, nonfinite_as_none=nonfinite_as_none) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        items = x.tolist() if isinstance(x, np.ndarray) else x
        return [json_safe(v, nonfinite_as_none=nonfinite_as_none) for v in items]
    if isinstance(x, np.generic):
        x = x.item()
    if nonfinite_as_none and isinstance(x, float) and not math.isfinite(x):
        return None
    return x
