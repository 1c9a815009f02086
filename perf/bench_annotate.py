"""Latency of ``sdme annotate``'s store on a large corpus: serving an item, recording a vote,
computing the dashboard.

A store with ``--clips`` clips x 3 modalities is filled in-process (no web server: the numbers are
the database's part of each request) by ``--annotators`` annotators taking turns, each answering
``--answers`` items; every ``next_item`` and ``vote`` is timed (each is one ``BEGIN IMMEDIATE``
transaction, fsynced: ``synchronous=FULL``). Then the owner's dashboard figures
(``sdme.annotate.dashboard.summarize`` over every vote) are timed. The store lives in
``--dir`` (default: a temporary folder; put it on the disk you will serve from, since fsync cost
depends on it).

Usage::

    python perf/bench_annotate.py --clips 10000 --annotators 30 --answers 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from sdme.annotate.dashboard import summarize  # noqa: E402
from sdme.annotate.store import AnnotateSettings, Store  # noqa: E402
from sdme.schema import DEFAULT_TAXONOMY, MODALITIES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--annotators", type=int, default=30)
    parser.add_argument("--answers", type=int, default=20, help="Items each annotator answers.")
    parser.add_argument("--votes-per-item", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()

    folder = args.dir or Path(tempfile.mkdtemp(prefix="sdme-bench-annotate-"))
    store = Store(folder / "annotate.sqlite3")
    store.save_settings(AnnotateSettings(votes_per_item=args.votes_per_item))
    start = time.perf_counter()
    store.sync_items([(f"c{i:06d}", m, DEFAULT_TAXONOMY[i % 7])
                      for i in range(args.clips) for m in MODALITIES])
    print(f"items: {3 * args.clips} synced in {time.perf_counter() - start:.2f} s ({folder})")
    people = [store.authenticate(store.add_person(f"p{i}")).id for i in range(args.annotators)]
    rng = random.Random(0)
    serve, vote = [], []
    for _ in range(args.answers):
        for who in people:
            t0 = time.perf_counter()
            item = store.next_item(who)
            t1 = time.perf_counter()
            store.vote(who, item.id, rng.choice(DEFAULT_TAXONOMY), DEFAULT_TAXONOMY)
            t2 = time.perf_counter()
            serve.append(t1 - t0)
            vote.append(t2 - t1)

    def line(name: str, values: list[float]) -> str:
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        return (f"{name:<10} n={len(values)}  median {1000 * statistics.median(values):.1f} ms"
                f"  p95 {1000 * p95:.1f} ms")

    print(line("next_item", serve))
    print(line("vote", vote))
    t0 = time.perf_counter()
    progress = store.progress(people[0])
    print(f"progress   {1000 * (time.perf_counter() - t0):.1f} ms "
          f"(remaining {progress['remaining']})")
    t0 = time.perf_counter()
    votes = store.votes()
    summary = summarize(votes, store.items(), store.people(), store.settings(),
                        DEFAULT_TAXONOMY, store.open_leases())
    print(f"dashboard  {1000 * (time.perf_counter() - t0):.1f} ms over {len(votes)} votes "
          f"(kappa text {summary['modalities']['text']['kappa']})")


if __name__ == "__main__":
    main()
