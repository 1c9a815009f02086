"""Helpers shared by the ``perf/`` scripts: memory sampling, the machine's load, and the
CMU-MOSEI-sized synthetic dataset they measure on.

The dataset is ``sdme synth --n 23453`` with the generator's defaults, which are CMU-MOSEI's
shapes in MMSA's files (``sdme.synth.MOSEI_DIMS`` / ``MOSEI_SEQ_LEN``: text 768-d, 10-50 steps;
audio 74-d, 100-500 steps; vision 35-d, 75-375 steps): about 4.7 GB of parquet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the scripts run as plain scripts from a checkout
    sys.path.insert(0, str(REPO_ROOT))


class MemorySampler:
    """Peak VmRSS / RssAnon / RssFile of this process, sampled from /proc in a thread (Linux)."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peaks = dict.fromkeys(self.FIELDS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    if key in self.peaks:
                        self.peaks[key] = max(self.peaks[key], int(value.split()[0]) * 1024)
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def figures(self) -> dict[str, float]:
        """Peak RSS (``VmHWM``) and the sampled peaks of its anonymous and file-backed parts,
        in MB."""
        return {"peak_rss_mb": peak_rss_mb(), "peak_anon_mb": self.peaks["RssAnon"] / 2**20,
                "peak_file_mb": self.peaks["RssFile"] / 2**20}


def peak_rss_mb() -> float:
    """VmHWM: peak RSS of this process image (``ru_maxrss`` would include a parent's)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, object]:
    """CPUs and load averages (1, 5, 15 min): how loaded the machine was."""
    return {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a measuring child process: this checkout first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep
            + os.environ.get("PYTHONPATH", ""), **extra}


def ensure_dataset(path: Path, n: int, seed: int) -> dict | None:
    """Makes the MOSEI-sized synthetic dataset when ``path`` holds none; returns its figures."""
    if (path / "build_info.json").is_file():
        return None
    code = ("import json, sys, time; from sdme.synth import SynthConfig, synthesize; "
            "t = time.perf_counter(); "
            "synthesize(sys.argv[1], SynthConfig(n=int(sys.argv[2]), seed=int(sys.argv[3]))); "
            "hwm = [line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM:')][0]; "
            "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_rss_mb': "
            "int(hwm) / 1024}))")
    print(f"generating {n} synthetic clips into {path} ...", file=sys.stderr)
    done = subprocess.run([sys.executable, "-c", code, str(path), str(n), str(seed)],
                          env=child_env(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
