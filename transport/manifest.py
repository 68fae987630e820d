"""Manifests: the SHA-256 and size of every file a release or a run wrote.

One home for hashing, writing and verifying manifests, used by the release gate
(:mod:`transport.disclosure`: a ``transport.ReleaseManifest`` beside the released files)
and by the command line (a ``transport.RunManifest`` over a run's outputs). A directory
with a manifest holds exactly what the manifest lists: :func:`verify` checks that every
listed file is present and unchanged and that nothing else is there, and
:func:`listed` tells which files an earlier release or run wrote, so that only those are
ever replaced.

A release manifest may carry a keyed signature (``"signature": {"algorithm":
"hmac-sha256", "value": hex}``): an HMAC-SHA256, under a key held by the environment
(:func:`release_key`), of the manifest without its signature and of every released
file's SHA-256 (:func:`signature`). Anyone can edit a released file and recompute its
hash in the manifest; only the key's holder can recompute the signature, so a release
edited after the gate is told apart by :func:`verify` with the key. Without the key a
signature is reported as not checked. The key itself is never written or shown.

What :func:`verify` refuses, by the rules it names:

``release_path``
    A manifest entry that is not a plain file name in the directory (absolute, with a
    path separator or ``..``, or resolving outside it), and any symbolic link or
    non-file in the directory: what is verified is exactly what is exported.
``release_manifest``
    A manifest that is not what the gate writes: unreadable, a field missing, unknown or
    mistyped (each file entry is ``file``, ``sha256``, ``bytes``; each withheld item
    ``item``, ``rule``, ``why``), a file listed twice.
``release_hash``
    A file not listed, a listed file missing, or one whose SHA-256 or size differs.
``release_signature``
    With a key: a missing or wrong signature; a key shorter than 16 bytes.

The content of the files (counts against the stated policy, the policy itself, the
withheld items' rule names) is audited above this module, by
:func:`transport.policy.audit_release`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError

__all__ = [
    "KEY_ENV",
    "MANIFEST",
    "MIN_KEY_BYTES",
    "RELEASE_FIELDS",
    "RELEASE_SCHEMA",
    "RUN_SCHEMA",
    "SIGNATURE_ALGORITHM",
    "Verified",
    "digest",
    "entries",
    "entry",
    "json_safe",
    "listed",
    "release_key",
    "rendered",
    "signature",
    "verify",
    "write",
]

MANIFEST = "manifest.json"
RELEASE_SCHEMA = "transport.ReleaseManifest"
RUN_SCHEMA = "transport.RunManifest"

#: The environment variable that holds an environment's release key.
KEY_ENV = "TRANSPORT_RELEASE_KEY"
#: The shortest release key accepted (an HMAC key shorter than this is guessable).
MIN_KEY_BYTES = 16
SIGNATURE_ALGORITHM = "hmac-sha256"
#: The fields of a release manifest, each with its JSON type; ``signature`` is optional.
RELEASE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "version": int,
    "package": dict,
    "object": str,
    "name": str,
    "policy": dict,
    "files": list,
    "suppressed": list,
    "signature": dict,
}
_ENTRY_FIELDS = {"file": str, "sha256": str, "bytes": int}
_WITHHELD_FIELDS = {"item": str, "rule": str, "why": str}
_HEX64 = re.compile(r"[0-9a-f]{64}")


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


def rendered(manifest: Mapping[str, Any], *, indent: int = 2) -> bytes:
    """``manifest`` as :func:`write` writes it."""
    return (json.dumps(manifest, indent=indent, allow_nan=False) + "\n").encode()


def write(directory: Path, manifest: dict[str, Any], *, indent: int = 2) -> None:
    """Write ``manifest`` as ``directory/manifest.json``."""
    (directory / MANIFEST).write_bytes(rendered(manifest, indent=indent))


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


# -- the keyed signature -------------------------------------------------------------------
def release_key(key_file: str | Path | None = None) -> bytes | None:
    """The environment's release key: the bytes of ``key_file`` (surrounding whitespace
    stripped) when one is named, else the value of ``TRANSPORT_RELEASE_KEY``, else
    ``None`` (no key: releases are unsigned and signatures not checked). A key shorter
    than 16 bytes is refused (rule ``release_signature``); the key is never shown."""
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise DisclosureError(
                f"release key file {str(key_file)!r} cannot be read ({exc.strerror}) "
                "(rule: release_signature)"
            ) from None
        where = f"release key file {str(key_file)!r}"
    else:
        value = os.environ.get(KEY_ENV)
        if value is None:
            return None
        key, where = value.encode(), f"environment variable {KEY_ENV}"
    if len(key) < MIN_KEY_BYTES:
        raise DisclosureError(
            f"the {where} holds a key of {len(key)} bytes, fewer than {MIN_KEY_BYTES} "
            "(rule: release_signature): use a longer random key"
        )
    return key


def signature(manifest: Mapping[str, Any], hashes: Mapping[str, str], key: bytes) -> str:
    """The HMAC-SHA256 (hex) under ``key`` of the canonical manifest (sorted keys, no
    whitespace, without its ``signature``) followed by every file's name and SHA-256
    (``hashes``, sorted by name)."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    files = "".join(f"\n{name}\t{hashes[name]}" for name in sorted(hashes))
    message = f"{RELEASE_SCHEMA}/{SIGNATURE_ALGORITHM}/1\n{text}{files}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# -- verification --------------------------------------------------------------------------
class Verified(dict[str, Any]):
    """The manifest of a verified release (a ``dict``), with :attr:`signature`: ``"valid"``
    when the keyed signature was checked, ``"not checked"`` when no key was at hand."""

    signature: str = "not checked"


def verify(directory: str | Path, key: bytes | None = None) -> Verified:
    """Check a release directory against its manifest: the manifest is what the gate
    writes, every entry a plain file name in the directory, every listed file present
    and unchanged (SHA-256 and size), nothing else there (no symbolic links), and, with
    ``key`` (:func:`release_key`), the keyed signature. Returns the manifest; raises
    :class:`~transport.DisclosureError` naming the file or field and the rule otherwise.
    The content of the files is audited by :func:`transport.policy.audit_release`."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    files = _check_entries(manifest["files"], directory)
    _check_withheld(manifest["suppressed"])
    _check_directory(directory, files)
    hashes = {}
    for name, e in files.items():
        payload = (directory / name).read_bytes()
        hashes[name] = digest(payload)
        if hashes[name] != e["sha256"] or len(payload) != e["bytes"]:
            raise DisclosureError(
                f"released file {name!r} changed after release (SHA-256 or size differs from "
                "the manifest) (rule: release_hash)"
            )
    out = Verified(manifest)
    out.signature = _check_signature(manifest, hashes, key)
    return out


def _refuse(what: str, rule: str = "release_manifest") -> DisclosureError:
    return DisclosureError(f"{what} (rule: {rule}: a release is verified as the gate wrote it)")


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if path.is_symlink():
        raise _refuse(f"{MANIFEST} in {str(directory)!r} is a symbolic link", "release_path")
    if not path.is_file():
        raise _refuse(f"release directory {str(directory)!r} has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(f"{MANIFEST} in {str(directory)!r} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != RELEASE_SCHEMA:
        raise _refuse(f"{MANIFEST} in {str(directory)!r} is not a release manifest")
    _check_fields(manifest, RELEASE_FIELDS, MANIFEST, optional={"signature"})
    if manifest["version"] != 1:
        raise _refuse(f"{MANIFEST} has version {manifest['version']!r}; this package reads 1")
    return manifest


def _check_fields(
    data: Any,
    fields: Mapping[str, type | tuple[type, ...]],
    where: str,
    optional: Iterable[str] = (),
) -> None:
    """``data`` a JSON object with exactly ``fields`` (``optional`` ones may be absent),
    each of its type."""
    if not isinstance(data, dict):
        raise _refuse(f"{where} is a {type(data).__name__}, not an object with {sorted(fields)}")
    missing = sorted(set(fields) - set(data) - set(optional))
    if missing:
        raise _refuse(f"{where} lacks field(s) {missing}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _refuse(f"{where} has field(s) {unknown} the gate does not write")
    for key, kind in fields.items():
        value = data.get(key)
        if key in data and (not isinstance(value, kind) or isinstance(value, bool)):
            raise _refuse(f"{where} field {key!r} is a {type(value).__name__}")


def _check_entries(listed: list[Any], directory: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    root = directory.resolve()
    for i, e in enumerate(listed):
        _check_fields(e, _ENTRY_FIELDS, f"{MANIFEST} files[{i}]")
        name = e["file"]
        if (directory / name).is_symlink():
            raise _refuse(f"{MANIFEST} lists {name!r}, a symbolic link", "release_path")
        plain = (
            name not in ("", ".", "..", MANIFEST)
            and ".." not in name
            and not re.search(r"[/\\:\x00-\x1f]", name)
            and not Path(name).is_absolute()
        )
        if not plain or (directory / name).resolve().parent != root:
            raise _refuse(
                f"{MANIFEST} lists {name!r}, which is not a plain file name inside the "
                "release directory",
                "release_path",
            )
        if name in files:
            raise _refuse(f"{MANIFEST} lists {name!r} twice")
        if not _HEX64.fullmatch(e["sha256"]) or e["bytes"] < 0:
            raise _refuse(f"{MANIFEST} entry {name!r} has a malformed sha256 or bytes")
        files[name] = e
    return files


def _check_withheld(suppressed: list[Any]) -> None:
    for i, s in enumerate(suppressed):
        _check_fields(s, _WITHHELD_FIELDS, f"{MANIFEST} suppressed[{i}]")


def _check_directory(directory: Path, files: Mapping[str, Any]) -> None:
    """Nothing in the directory but the listed files and the manifest, each a regular
    file, none a symbolic link."""
    for p in sorted(directory.iterdir()):
        if p.is_symlink() or not p.is_file():
            kind = "a symbolic link" if p.is_symlink() else "not a regular file"
            raise _refuse(
                f"{p.name!r} in release directory {str(directory)!r} is {kind}", "release_path"
            )
    extra = sorted({p.name for p in directory.iterdir()} - set(files) - {MANIFEST})
    if extra:
        raise DisclosureError(
            f"release directory {str(directory)!r} holds file(s) not in its manifest: {extra} "
            "(rule: release_hash: everything released is listed and checked)"
        )
    for name in files:
        if not (directory / name).is_file():
            raise DisclosureError(
                f"released file {name!r} listed in the manifest is missing (rule: release_hash)"
            )


def _check_signature(
    manifest: Mapping[str, Any], hashes: Mapping[str, str], key: bytes | None
) -> str:
    sig = manifest.get("signature")
    if sig is not None:
        _check_fields(sig, {"algorithm": str, "value": str}, f"{MANIFEST} signature")
        if sig["algorithm"] != SIGNATURE_ALGORITHM or not _HEX64.fullmatch(sig["value"]):
            raise _refuse(f"{MANIFEST} signature is not {SIGNATURE_ALGORITHM} hex")
    if key is None:
        return "not checked"
    if sig is None:
        raise DisclosureError(
            f"{MANIFEST} carries no signature, but a release key is set (rule: "
            "release_signature): the release was not written by this environment's gate, "
            "or its signature was removed"
        )
    if not hmac.compare_digest(sig["value"], signature(manifest, hashes, key)):
        raise DisclosureError(
            f"{MANIFEST} signature does not match its content under the release key (rule: "
            "release_signature): the release was edited after the gate, or signed with "
            "another key"
        )
    return "valid"


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
