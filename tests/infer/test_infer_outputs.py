"""Output paths: existing files need ``overwrite``, inputs are never replaced, new files get the umask."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pose2met.infer.outputs import OutputError, check_new_output, write_atomic, write_result


def test_check_new_output_refuses_inputs_and_existing_files(tmp_path: Path) -> None:
    data = tmp_path / "kp.npz"
    data.write_bytes(b"keypoints")
    hard = tmp_path / "hard.npz"
    os.link(data, hard)
    for out in (data, hard, tmp_path / "." / "kp.npz"):
        with pytest.raises(
            OutputError, match=r"is the --input file this command reads; refusing to overwrite"
        ):
            check_new_output(out, overwrite=True, inputs={"--checkpoint": None, "--input": str(data)})
    with pytest.raises(OutputError, match=r"hard\.npz exists; pass --overwrite to replace it$"):
        check_new_output(hard, inputs={"--input": tmp_path / "other.npz"})
    assert check_new_output(hard, overwrite=True, inputs={"--input": tmp_path / "other.npz"}) == hard
    assert check_new_output(tmp_path / "new.json", inputs={"--input": data}) == tmp_path / "new.json"
    assert data.read_bytes() == b"keypoints"


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(out, fail)
    assert out.read_text() == "old" and list(tmp_path.iterdir()) == [out]


def test_written_data_reach_the_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the complete temporary file, then the rename, then (POSIX) fsync of the folder."""
    out = tmp_path / "out.json"
    out.write_text("old")
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?"
        events.append((target, out.read_text()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_atomic(out, lambda tmp: tmp.write_text("new"))
    assert out.read_text() == "new" and list(tmp_path.iterdir()) == [out]
    assert len(events) == (2 if os.name == "posix" else 1)
    temp_file, content_at_sync = events[0]
    assert content_at_sync == "old"  # the data were flushed before the target was replaced
    if os.path.exists("/proc/self/fd"):
        assert Path(temp_file).name.startswith(".out.") and Path(temp_file).parent == tmp_path
        assert events[1] == (str(tmp_path), "new")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=oct)
def test_new_files_get_the_umask_mode(umask: int, tmp_path: Path) -> None:
    old = os.umask(umask)
    try:
        write_result(tmp_path / "a.npz", {"x": [1.0]})
        write_result(tmp_path / "b.json", {"x": [1.0]})
    finally:
        os.umask(old)
    for name in ("a.npz", "b.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.json"]
