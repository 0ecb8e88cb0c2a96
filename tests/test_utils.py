"""Tests for hf_rnn.utils: atomic folder writes (on the real file system), one-line errors, packaged data folders."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hf_rnn
from hf_rnn import utils
from hf_rnn.utils import atomic_directory, one_line, package_data_dir


def _siblings(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir())


def _temporary(target: Path, pid: int, host: str | None = None) -> Path:
    """A temporary folder of `target` as a writer with this pid (on this machine by default) leaves it."""
    folder = target.with_name(f".{target.name}.tmp-{host or utils._host()}-{pid}-0123abcd")
    folder.mkdir()
    (folder / "part.bin").write_bytes(b"half written")
    return folder


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_atomic_directory_renames_into_place(tmp_path):
    target = tmp_path / "cache" / "result"
    with atomic_directory(target) as folder:
        assert folder.parent == target.parent and folder.is_dir() and not any(folder.iterdir())
        assert not target.exists()
        (folder / "data.txt").write_text("complete", encoding="utf-8")
    assert (target / "data.txt").read_text(encoding="utf-8") == "complete"
    assert _siblings(target) == ["result"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_atomic_directory_failure_leaves_no_target_and_no_temporary(tmp_path, error):
    target = tmp_path / "result"
    with pytest.raises(type(error)):
        with atomic_directory(target) as folder:
            (folder / "data.txt").write_text("half", encoding="utf-8")
            raise error
    assert not target.exists()
    assert _siblings(target) == []


def test_atomic_directory_keeps_the_target_of_a_writer_that_finished_first(tmp_path):
    target = tmp_path / "result"
    with atomic_directory(target) as folder:
        (folder / "data.txt").write_text("ours", encoding="utf-8")
        # a concurrent writer renames its complete folder into place while we are still writing
        target.mkdir()
        (target / "data.txt").write_text("theirs", encoding="utf-8")
    assert (target / "data.txt").read_text(encoding="utf-8") == "theirs"
    assert _siblings(target) == ["result"]


def test_atomic_directory_removes_temporaries_of_dead_writers_only(tmp_path):
    target = tmp_path / "result"
    dead = _temporary(target, _dead_pid())
    live = _temporary(target, os.getpid())
    other_machine = _temporary(target, _dead_pid(), host="another-host")
    other_target = _temporary(tmp_path / "other", _dead_pid())
    with atomic_directory(target) as folder:
        (folder / "data.txt").write_text("complete", encoding="utf-8")
    assert not dead.exists()
    assert (live / "part.bin").is_file()
    assert (other_machine / "part.bin").is_file()
    assert (other_target / "part.bin").is_file()
    assert (target / "data.txt").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_atomic_directory_cleans_up_after_a_writer_killed_with_sigkill(tmp_path):
    target = tmp_path / "result"
    # load hf_rnn/utils.py alone: the writer should not spend seconds importing transformers
    writer = textwrap.dedent(
        f"""
        import importlib.util, sys, time
        spec = importlib.util.spec_from_file_location("hf_rnn_utils", {str(Path(utils.__file__))!r})
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
        with utils.atomic_directory({str(target)!r}) as folder:
            (folder / "part.bin").write_bytes(b"half written")
            print(folder, flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        left_behind = Path(child.stdout.readline().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert left_behind.parent == tmp_path and (left_behind / "part.bin").is_file()
    assert not target.exists()

    with atomic_directory(target) as folder:
        (folder / "data.txt").write_text("complete", encoding="utf-8")
    assert _siblings(target) == ["result"]


@pytest.mark.parametrize(
    "message, first_only, expected",
    [
        ("plain", False, "plain"),
        ("  first\n\n  second  \n", False, "first second"),
        ("  first\n\n  second  \n", True, "first"),
        ("", False, "ValueError"),
        (" \n ", True, "ValueError"),
    ],
)
def test_one_line(message, first_only, expected):
    assert one_line(ValueError(message), first_only=first_only) == expected


def test_package_data_dir_finds_the_shipped_folders():
    from hf_rnn.cards import TEMPLATE_PATH
    from hf_rnn.recipes import CONFIGS_DIR

    assert package_data_dir("configs") == CONFIGS_DIR and (CONFIGS_DIR / "recipes").is_dir()
    assert TEMPLATE_PATH == package_data_dir("model_cards") / "model_card_template.md" and TEMPLATE_PATH.is_file()
    assert package_data_dir("configs").parent in (Path(hf_rnn.__file__).parent, Path(hf_rnn.__file__).parent.parent)
