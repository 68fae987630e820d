"""Outputs are written whole or not at all: a full disk, a killed run or a user's folder in
the way never leaves a broken release, hidden debris, or a deleted folder (issue 15)."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import transport as tp
from transport import staging
from transport.disclosure import release, verify
from transport.exceptions import DataError, DisclosureError

COMMAND = Path(sys.executable).parent / "transport"
PLAN = (
    '[cohorts.DE]\ndataset = "synthetic:DE"\n[cohorts.JP]\ndataset = "synthetic:JP"\n'
    '[analysis]\nsource = "DE"\ntargets = ["JP"]\nmethods = ["naive"]\ntimes = [365.25]\n'
)


def command(*args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The `transport` command; with ``limit``, no file it writes may pass ``limit`` bytes
    (the kernel refuses the write as a full disk would)."""

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # type: ignore[arg-type]

    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        preexec_fn=small_disk if limit is not None else None,
    )


def hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*"))


# -- a full disk -----------------------------------------------------------------------------
def test_a_release_onto_a_full_disk_leaves_no_broken_manifest(tmp_path: Path) -> None:
    out = tmp_path / "release"
    res = command("summarize", "synthetic:DE", "--out", str(out), limit=3000)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "transport: " in res.stderr
    assert list(out.iterdir()) == []  # nothing half-written, nothing hidden
    # the same command with room succeeds, and its release verifies
    assert command("summarize", "synthetic:DE", "--out", str(out)).returncode == 0
    assert len(verify(out)["files"]) == 1


def test_an_overwrite_that_runs_out_of_room_keeps_the_earlier_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the manifest is written: the earlier release stays whole."""
    out = tmp_path / "release"
    cohort = tp.datasets.load_synthetic("DE")
    release(tp.kaplan_meier(cohort), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, calls = os.fsync, []

    def fill_up(fd: int) -> None:
        calls.append(fd)
        if len(calls) == len(before):  # the last file written: the manifest
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(staging.os, "fsync", fill_up)
    with pytest.raises(DataError, match=r"release directory .*No space left"):
        release(tp.kaplan_meier(cohort.in_unit("weeks")), out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    verify(out)  # still a whole release


# -- a killed run ----------------------------------------------------------------------------
KILLED = """
import os, sys
from pathlib import Path
from transport.staging import staged_directory, write_in_place
target = Path(sys.argv[1])
if sys.argv[2] == "run":
    with staged_directory(target) as tmp:
        (tmp / "report.html").write_text("half a report")
        os._exit(9)  # killed: no cleanup runs
target.mkdir(exist_ok=True)
real = os.replace
def die(*a):
    os._exit(9)
os.replace = die
write_in_place(target, {"a.csv": b"1", "manifest.json": b"{}"}, "manifest.json", [])
"""


def killed(target: Path, kind: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(target), kind], timeout=120
    )
    assert done.returncode == 9


def test_a_killed_run_leaves_debris_that_the_next_run_removes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed(out, "run")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.partial-")]
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    res = command("run", str(plan), "--out", str(out), "--quiet", "--no-figures")
    assert res.returncode == 0, res.stderr
    assert hidden(tmp_path) == [], "the dead run's partial directory is removed"
    assert (out / "report.html").read_text() != "half a report"


def test_a_killed_release_leaves_pieces_that_the_next_release_removes(tmp_path: Path) -> None:
    out = tmp_path / "release"
    killed(out, "release")
    assert hidden(out), "the killed writer left its pieces"
    assert not (out / "manifest.json").exists()  # never a manifest of a half release
    release(tp.kaplan_meier(tp.datasets.load_synthetic("DE")), out)
    assert hidden(out) == []
    verify(out)


def test_pieces_of_a_running_writer_are_left_alone(tmp_path: Path) -> None:
    """Another process writing the same release directory right now: its pieces are not
    swept, and the release refuses a directory that is not empty."""
    out = tmp_path / "release"
    out.mkdir()
    piece = out / f".manifest.json.partial-{staging._HOST}-{os.getpid()}-abcd1234"
    piece.write_bytes(b"writing")
    assert staging.sweep(out) == []
    with pytest.raises(FileExistsError, match="is not empty"):
        release(tp.kaplan_meier(tp.datasets.load_synthetic("DE")), out)
    assert piece.read_bytes() == b"writing"


def test_pieces_of_another_host_are_left_alone(tmp_path: Path) -> None:
    piece = tmp_path / ".out.partial-elsewhere-1-abcd1234"
    piece.mkdir()
    assert staging.sweep(tmp_path, "out") == [] and piece.is_dir()


# -- a user's folder in the way ---------------------------------------------------------------
def test_overwrite_refuses_to_delete_a_users_empty_folder(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    args = ("run", str(plan), "--out", str(out), "--quiet", "--no-figures")
    assert command(*args).returncode == 0
    (out / "my drafts").mkdir()
    res = command(*args, "--overwrite")
    assert res.returncode == 2 and "my drafts" in res.stderr
    assert (out / "my drafts").is_dir()
    (out / "my drafts").rmdir()
    res = command(*args, "--overwrite")
    assert res.returncode == 0, res.stderr  # the run's own folders are its to replace
    assert json.loads((out / "manifest.json").read_text())["files"]


def test_an_unreadable_release_manifest_is_named_when_overwrite_refuses(tmp_path: Path) -> None:
    out = tmp_path / "release"
    out.mkdir()
    (out / "manifest.json").write_bytes(b"")  # what an older version left on a full disk
    with pytest.raises(FileExistsError, match=r"manifest\.json cannot be read"):
        release(tp.kaplan_meier(tp.datasets.load_synthetic("DE")), out, overwrite=True)
    with pytest.raises(DisclosureError):
        verify(out)


# -- the command's last line of defence ------------------------------------------------------
def test_a_terminated_run_exits_cleanly_and_leaves_nothing(tmp_path: Path) -> None:
    import time

    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('"naive"', '"gformula"') + "n_boot = 400\nseed = 1\n")
    out = tmp_path / "out"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    args = [str(COMMAND), "run", str(plan), "--out", str(out), "--no-figures"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "[1/1] gformula: DE -> JP": the analysis has begun
    assert "gformula" in first
    time.sleep(0.5)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]


def test_a_bug_is_one_line_with_the_way_to_see_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import transport.cli as cli

    def broken(args: object) -> int:
        raise KeyError("columns")

    monkeypatch.setattr(cli, "cmd_release_verify", broken)
    monkeypatch.delenv("TRANSPORT_DEBUG", raising=False)
    assert cli.main(["release", "verify", "anywhere"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error: KeyError: 'columns'" in err and "TRANSPORT_DEBUG=1" in err
    monkeypatch.setenv("TRANSPORT_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["release", "verify", "anywhere"])
