"""Time and peak memory of reading an MMSA-sized feature pickle with ``sdme.safe_pickle`` (the
bounded interpreter) against the standard C unpickler, for each pickle protocol.

A pickle in MMSA's layout (``sdme.mmsa.fake_split``, CMU-MOSEI's feature sizes) with
``--clips`` training clips (a fifth as many in validation and in test) is written once per
protocol into ``--dir``; each reader then loads it in a fresh process, which reports its
wall time and peak resident memory (``VmHWM``, imports included).

Usage::

    python perf/bench_safe_pickle.py --clips 1500
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from sdme.mmsa import fake_split  # noqa: E402

READERS = {
    "safe_pickle": "from sdme import safe_pickle; safe_pickle.load(path)",
    "C pickle": "import pickle, numpy; pickle.load(open(path, 'rb'))",
}
_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
path = {path!r}
start = time.perf_counter()
{code}
seconds = time.perf_counter() - start
status = open("/proc/self/status").read().splitlines()
peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
print(json.dumps({{"seconds": seconds, "peak_mb": peak_kb / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1500)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write the pickles.")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="sdme-bench-pickle-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_eval = max(1, args.clips // 5)
    data = {split: fake_split("mosei", split, n, rng,
                              steps={"text": 50, "audio": 200, "vision": 100})
            for split, n in (("train", args.clips), ("valid", n_eval), ("test", n_eval))}
    print(f"{'protocol':>8} {'MB':>7}  {'reader':<12} {'seconds':>8} {'peak MB':>8}")
    for protocol in (2, 4, 5):
        path = folder / f"mosei_p{protocol}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=protocol)
        size = path.stat().st_size / 2**20
        for name, code in READERS.items():
            child = _CHILD.format(root=str(REPO_ROOT), path=str(path), code=code)
            done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                                  check=True)
            result = json.loads(done.stdout)
            print(f"{protocol:>8} {size:7.0f}  {name:<12} {result['seconds']:8.2f} "
                  f"{result['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
