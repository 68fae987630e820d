"""The record of one release: the files it writes, what was withheld and why, and the
manifest (:mod:`transport.manifest`) that lists them, signed with the environment's
release key when there is one (rule ``release_signature``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from transport import manifest as manifests
from transport._version import __version__
from transport.design import closed_text
from transport.exceptions import DataError, DisclosureError
from transport.manifest import json_safe
from transport.policy import (
    RELEASE_FILES,
    Policy,
    SchemaMismatch,
    check_release,
    refuse_forbidden,
)
from transport.staging import os_errors_named, sweep, write_in_place

__all__ = ["Release", "prepare_directory"]


class Release:
    """What one call of :func:`~transport.disclosure.release` writes: its files (bytes
    by name), what it withheld (item, rule, why; never the withheld value), under which
    policy. Handlers add files and call :meth:`withhold`; :meth:`write` puts the files
    and ``manifest.json`` into an empty directory."""

    def __init__(self, policy: Policy, kind: str, name: str) -> None:
        self.policy = policy
        self.kind = kind
        self.name = name
        self.suppressed: list[dict[str, str]] = []
        self.files: dict[str, bytes] = {}

    def withhold(self, item: str, rule: str, why: str) -> None:
        """Record that ``item`` was withheld under ``rule`` (a :data:`policy.Withhold`)."""
        self.suppressed.append({"item": item, "rule": rule, "why": why})

    def check_names(self, names: Sequence[str], where: str) -> None:
        """Refuse a column with a forbidden role (:func:`~transport.policy.refuse_forbidden`)."""
        refuse_forbidden(names, self.policy, where)

    def check_formula(self, text: str, covariates: Sequence[str], where: str) -> None:
        """Refuse a formula outside the closed grammar of :mod:`transport.formula` (rule
        ``formula_closed``): whoever reads the release reads its formula as data."""
        try:
            closed_text(text, covariates, f"formula of the {where}")
        except DataError as exc:
            raise DisclosureError(
                f"{exc} (rule formula_closed: a released formula is read in the closed "
                "grammar where it arrives)"
            ) from None

    def add_json(self, filename: str, data: Any) -> None:
        text = json.dumps(json_safe(data), indent=2, allow_nan=False, sort_keys=False)
        self.files[filename] = (text + "\n").encode()

    def add_csv(self, filename: str, frame: pl.DataFrame) -> None:
        self.files[filename] = frame.write_csv(float_precision=None).encode()

    def write(self, directory: Path, overwrite: bool) -> dict[str, Any]:
        """Write the files and the manifest into ``directory`` (an error the system
        reports, such as no permission or a full disk, is a ``DataError`` naming it, and
        the directory holds what it held before); return the manifest. With
        a release key (the policy's ``signing_key_file``, else ``TRANSPORT_RELEASE_KEY``:
        :func:`~transport.manifest.release_key`) the manifest carries its keyed
        signature."""
        if set(self.files) != RELEASE_FILES[self.kind]:
            raise RuntimeError(
                f"the gate wrote {sorted(self.files)} for a {self.kind}, not the files "
                f"verification expects ({sorted(RELEASE_FILES[self.kind])}): update "
                "transport.policy.RELEASE_FILES with the handler"
            )
        key = manifests.release_key(self.policy.signing_key_file)  # before anything is written
        entries = [manifests.entry(name, payload) for name, payload in self.files.items()]
        manifest: dict[str, Any] = {
            "schema": manifests.RELEASE_SCHEMA,
            "version": 1,
            "package": {"name": "transport", "version": __version__},
            "object": self.kind,
            "name": self.name,
            "policy": self.policy.to_dict(),
            "files": entries,
            "suppressed": self.suppressed,
        }
        self.check_layout(manifest)
        with os_errors_named(directory, "release directory"):
            stale = prepare_directory(directory, overwrite)
        if key is not None:
            written = json.loads(json.dumps(manifest, allow_nan=False))  # as it reads back
            hashes = {e["file"]: e["sha256"] for e in entries}
            value = manifests.signature(written, hashes, key)
            manifest["signature"] = {"algorithm": manifests.SIGNATURE_ALGORITHM, "value": value}
        files = {**self.files, manifests.MANIFEST: manifests.rendered(manifest)}
        with os_errors_named(directory, "release directory"):
            write_in_place(directory, files, manifests.MANIFEST, stale)
        return manifest

    def check_layout(self, manifest: dict[str, Any]) -> None:
        """What the gate writes is what verification expects: each file and the manifest
        laid out as :data:`transport.policy.FILE_SCHEMAS` says (rule ``release_schema``),
        its names under the gate's name rules. A layout the table does not describe is
        the gate's own bug (``RuntimeError``); a name the rules refuse is refused here too
        (``DisclosureError``), whichever handler missed it."""
        try:
            check_release(self.kind, self.files, manifests.rendered(manifest), self.policy)
        except SchemaMismatch as exc:
            raise RuntimeError(
                f"the gate wrote a {self.kind} release that verification refuses: {exc}; "
                "update transport.policy.FILE_SCHEMAS with the handler"
            ) from None


def prepare_directory(directory: Path, overwrite: bool) -> list[str]:
    """An empty (or new) directory; with ``overwrite``, one holding exactly an earlier
    release (its manifest and files), whose names are returned for the writer to remove
    once the new release is in place. Anything else is refused, so that every file in a
    release directory is listed in its manifest. Hidden pieces of a killed writer are
    removed first (:func:`transport.staging.sweep`)."""
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(
            f"release directory {str(directory)!r} is a file, not a directory: a release "
            "writes a directory of files and its manifest (name a new or empty directory)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    sweep(directory)
    present = sorted(p.name for p in directory.iterdir())
    if not present:
        return []
    listed = manifests.listed(directory) if overwrite else None
    earlier = listed is not None and set(present) <= listed
    if earlier and all((directory / p).is_file() for p in present):
        return present
    unreadable = overwrite and listed is None and manifests.MANIFEST in present
    why = f": its {manifests.MANIFEST} cannot be read as a release manifest" if unreadable else ""
    raise FileExistsError(
        f"release directory {str(directory)!r} is not empty ({len(present)} entries{why}): a "
        "release writes into an empty directory so that everything in it is listed in its "
        "manifest (overwrite=True replaces an earlier release there)"
    )
