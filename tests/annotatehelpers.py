"""Helpers for the ``sdme annotate`` tests: a small real corpus, the real server, plain HTTP.

- :func:`small_corpus` copies a few clips of the bundled sample corpus (real faces, espeak-ng
  speech, H.264/AAC) into a raw folder with its own valid ``sdme.json``.
- :func:`fresh_copy` copies a prepared corpus without its database, so each test starts a new
  project but reuses the isolated media (prepared once per session).
- :class:`Server` runs ``python -m sdme.cli annotate serve RAW --port 0`` in a subprocess on
  127.0.0.1 and reads the URL and the owner token from what it prints.
- :func:`http` is one request with ``urllib`` (no client library between the test and the app).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

from sdme.schema import ANNOTATIONS_NAME, MANIFEST_NAME, CorpusManifest, make_manifest_files
from sdme.sources.sample import sample_dir

REPO = Path(__file__).resolve().parent.parent


def small_corpus(target: Path, clip_ids: list[str], *, keep_votes: bool = True) -> Path:
    """A raw corpus at ``target`` holding ``clip_ids`` of the sample corpus."""
    source = sample_dir()
    (target / "clips").mkdir(parents=True)
    text = (source / ANNOTATIONS_NAME).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [r for r in reader if r["clip_id"] in clip_ids]
    assert len(rows) == len(clip_ids)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if not keep_votes:
            row.update(votes_text="", votes_audio="", votes_vision="")
        writer.writerow(row)
    (target / ANNOTATIONS_NAME).write_text(out.getvalue(), encoding="utf-8")
    for cid in clip_ids:
        shutil.copy2(source / "clips" / f"{cid}.mp4", target / "clips" / f"{cid}.mp4")
    manifest = replace(CorpusManifest.load(source), name="mini", files=make_manifest_files(target))
    (target / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return target


def fresh_copy(prepared: Path, target: Path) -> Path:
    """``prepared`` (media included) without its project database or owner token."""
    shutil.copytree(prepared, target, ignore=shutil.ignore_patterns(
        "annotate.sqlite3*", "owner.token", "backups"))
    return target


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> object:
        return json.loads(self.body)


def http(method: str, url: str, *, token: str | None = None, body: object = None,
         headers: dict[str, str] | None = None) -> Response:
    """One HTTP request; never follows redirects; returns status, body and headers."""
    data = None
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with opener.open(request, timeout=10) as response:
            return Response(response.status, response.read(),
                            {k.lower(): v for k, v in response.headers.items()})
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()})


class Server:
    """The real ``sdme annotate serve`` in a subprocess on a free loopback port."""

    def __init__(self, raw: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                          os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sdme.cli", "annotate", "serve", str(raw), "--port", "0",
             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.output: list[str] = []
        self.url = self.owner = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if "dashboard (yours):" in line:
                self.owner = line.rsplit("token=", 1)[1].strip()
            if line.strip().startswith("serving on "):
                self.url = line.split()[2]
                break
        if not self.url:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        while time.monotonic() < deadline:  # the socket listens already; wait for the app
            if http("GET", self.url + "/login").status == 401:
                return
            time.sleep(0.05)
        raise RuntimeError("server does not answer")

    def kill(self) -> None:
        """``kill -9``: no shutdown handler runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CLIPS = ["vid01_00", "vid01_01", "vid02_00", "vid03_00"]
_PREPARED: dict[tuple[str, ...], Path] = {}


def prepared_corpus(tmp_path_factory, clip_ids: list[str] = CLIPS) -> Path:  # noqa: ANN001
    """A small corpus whose isolated media are made once per test process (read it, copy it)."""
    from sdme.annotate.project import open_project

    key = tuple(clip_ids)
    if key not in _PREPARED:
        raw = small_corpus(tmp_path_factory.mktemp("prepared") / "raw", list(clip_ids))
        open_project(raw, prepare=True)
        _PREPARED[key] = raw
    return _PREPARED[key]
