"""Crash hygiene: SIGKILL of extract's parent process takes its pool of workers with it (no
worker alive 2 s later), the rerun equals a clean run, and no temporary file is left after
it; temporary files of a live writer are kept, those of a dead one removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import tiny_cohort
from thyrovid.atomic import atomic_path, remove_stale_temps
from thyrovid.clips.extract import POOL_MIN_CLIPS, extract


def _children(pid: int) -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            out.append(int(status.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has ended; only its exit status remains


def _cache(work: Path) -> dict[str, bytes]:
    files = sorted(p for p in work.rglob("*") if p.is_file() and p.name != "extract.json")
    return {str(p.relative_to(work)): p.read_bytes() for p in files}


def test_sigkill_of_the_parent_ends_its_pool_and_the_rerun_is_clean(tmp_path):
    n_patients = POOL_MIN_CLIPS // 4 + 1  # 4 key frames each: enough clips for the pool
    csv_path = tiny_cohort(tmp_path, n_patients=n_patients, n_frames=24, height=32, width=48,
                           keys=(3, 8, 13, 18))  # fmt: skip
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [sys.executable, "-m", "thyrovid", "extract", str(csv_path), "--out", str(killed),
           "--frames", "8", "--size", "16", "--workers", "2"]  # fmt: skip
    env = {**os.environ, "THYROVID_EXTRACT_DELAY_S": "0.05", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while len(list((killed / "clips").glob("*.npy"))) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers  # the pool (and the resource tracker) runs
    proc.send_signal(signal.SIGKILL)  # the parent only, as the OOM killer would
    proc.wait()
    time.sleep(2.0)
    assert [w for w in workers if _alive(w)] == []
    n_done = len(list((killed / "clips").glob("*.npy")))
    assert n_done < 4 * n_patients and not (killed / "clips.csv").exists()
    extract(csv_path, clean, frames=8, size=16, workers=1)
    report = extract(csv_path, killed, frames=8, size=16, workers=1)
    assert report.clips == 4 * n_patients
    assert _cache(killed) == _cache(clean)  # byte-equal, and no .*.tmp-* file left


def test_stale_temporary_files_go_live_ones_stay(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / ".metrics.tmp-abc.json", tmp_path / f".predictions.tmp-{dead.pid}-x.csv"]
    live = tmp_path / f".clips.tmp-{os.getppid()}-y.csv"  # our parent: a live process
    for p in [*stale, live]:
        p.write_text("half")
    assert sorted(remove_stale_temps(tmp_path)) == sorted(stale)
    assert live.exists()
    with atomic_path(tmp_path / "clips.csv") as tmp:
        assert f".clips.tmp-{os.getpid()}-" in tmp.name
