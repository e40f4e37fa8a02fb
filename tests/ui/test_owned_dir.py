"""A killed server's private temporary folder is reclaimed at the next start; a living one's is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ui.owned_dir import LOCK_NAME, owned_temp_folder, reclaim_abandoned

PREFIX = "rag-test-owned-"


def _owner_in_a_process(parent) -> tuple[subprocess.Popen, str]:
    code = ("import sys, time; from ui.owned_dir import owned_temp_folder\n"
            f"p = owned_temp_folder({PREFIX!r}, {str(parent)!r}); (p / 'staged.txt').write_text('x')\n"
            "print(p, flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


@pytest.mark.subprocess
def test_a_folder_whose_owner_was_killed_is_removed_and_a_living_ones_kept(tmp_path):
    killed, killed_folder = _owner_in_a_process(tmp_path)
    living, living_folder = _owner_in_a_process(tmp_path)
    try:
        os.kill(killed.pid, signal.SIGKILL)  # no atexit, no cleanup: as a crash leaves it
        killed.wait(timeout=30)
        assert os.path.isfile(os.path.join(killed_folder, "staged.txt"))
        (tmp_path / f"{PREFIX}foreign").mkdir()  # no lock file: not ours to take
        (tmp_path / f"{PREFIX}link").symlink_to(living_folder)

        mine = owned_temp_folder(PREFIX, tmp_path)

        assert not os.path.exists(killed_folder)
        assert os.path.isfile(os.path.join(living_folder, "staged.txt"))
        assert (tmp_path / f"{PREFIX}foreign").is_dir() and (tmp_path / f"{PREFIX}link").is_symlink()
        assert (mine / LOCK_NAME).is_file() and oct(mine.stat().st_mode & 0o777) == "0o700"
        assert reclaim_abandoned(tmp_path, PREFIX) == []  # this process's own folder is held too
    finally:
        living.kill()
        living.wait(timeout=30)
    time.sleep(0.1)
    assert [p.name for p in reclaim_abandoned(tmp_path, PREFIX)] == [os.path.basename(living_folder)]
