"""A loopback fake of the Hugging Face Hub endpoints huggingface_hub 2.4 uses for dataset repos.

A test double shipped in the package (as lhotse ships its test dummies): the ``hub`` source's
offline fixture serves a release through it, and the hub tests use it directly. It is not a
source (the leading underscore keeps the source registry from importing it). Served on
127.0.0.1 (a random port) by a threaded ``http.server``; nothing leaves the machine.

- ``GET /api/datasets/<ns>/<name>`` and ``.../revision/<rev>``: repo info (``id``, ``sha``,
  ``siblings``; sizes and blob ids with ``?blobs=true``), as read by ``HfApi.dataset_info`` and
  ``HfApi.resolve_revision``.
- ``GET /api/datasets/<ns>/<name>/tree/<rev>[/<path>]``: the tree listing
  (``HfApi.list_repo_tree``, used by ``snapshot_download``), one page.
- ``HEAD``/``GET /datasets/<ns>/<name>/resolve/<rev>/<path>``: the file, with the headers
  ``get_hf_file_metadata`` needs (``ETag`` = git blob sha1, ``X-Repo-Commit``,
  ``Content-Length``) and ``Range`` support (``206`` + ``Content-Range``, ``416`` past the end).
- Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``) so huggingface_hub raises its typed errors.

Knobs for tests: ``drop_after[path] = n`` cuts the connection after ``n`` body bytes the next time
``path`` is fetched (once), simulating an interrupted transfer; ``requests`` records every request
with its headers. Xet is not served: ``serve_fake_hub`` sets ``HF_HUB_DISABLE_XET``.

Endpoint shapes follow huggingface_hub 2.4's ``hf_api.py`` / ``file_download.py`` and the Hub's
HTTP API (https://huggingface.co/docs/hub/api).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

_INFO = re.compile(r"/api/datasets/([^/]+/[^/]+)(?:/revision/([^/]+))?/?")
_TREE = re.compile(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?")
_RESOLVE = re.compile(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True)
class Request:
    """One request the fake Hub received; ``headers`` keys are lower-case."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file, which the Hub sends as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _NotFound(Exception):
    def __init__(self, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.commit = commit


class FakeHub:
    """Dataset repos served over loopback HTTP. Use as a context manager, or start/close."""

    def __init__(self) -> None:
        self._refs: dict[str, dict[str, str]] = {}
        self._history: dict[str, set[str]] = {}
        self._commits: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()
        self.drop_after: dict[str, int] = {}
        self.requests: list[Request] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_dataset(self, repo: str, files: Path | Mapping[str, bytes],
                    revision: str = "main") -> str:
        """Publishes a commit of dataset ``repo`` and points ``revision`` at it.

        Args:
            repo: ``namespace/name``.
            files: A folder (every file under it, by relative POSIX path) or a path→bytes map.
            revision: The branch or tag to point at the new commit.

        Returns:
            The commit sha (40 hex digits, derived from the repo name and the contents).
        """
        if isinstance(files, Path):
            contents = {p.relative_to(files).as_posix(): p.read_bytes()
                        for p in sorted(files.rglob("*")) if p.is_file()}
        else:
            contents = dict(files)
        digest = hashlib.sha1(repo.encode())
        for path in sorted(contents):
            digest.update(f"{path}\0{git_blob_sha1(contents[path])}\0".encode())
        sha = digest.hexdigest()
        with self._lock:
            self._commits[sha] = contents
            self._refs.setdefault(repo, {})[revision] = sha
            self._history.setdefault(repo, set()).add(sha)
        return sha

    def range_requests(self, path: str | None = None) -> list[Request]:
        """The GET requests that carried a ``Range`` header (for one file if ``path`` is given)."""
        return [r for r in self.requests if r.method == "GET" and "range" in r.headers
                and (path is None or r.path.endswith(f"/{path}"))]

    # Used by the handler.
    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_drop(self, path: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(path, None)

    def _commit(self, repo: str, revision: str) -> str:
        with self._lock:
            refs = self._refs.get(repo)
            if refs is None:
                raise _NotFound("RepoNotFound", f"Repository {repo} not found")
            if revision in refs:
                return refs[revision]
            if revision in self._history[repo]:
                return revision
        raise _NotFound("RevisionNotFound", f"Invalid rev id: {revision}")

    def _files(self, sha: str) -> dict[str, bytes]:
        with self._lock:
            return self._commits[sha]


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            hub._record(Request(method, unquote(url.path),
                                {k.lower(): v for k, v in self.headers.items()}))
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if match := _RESOLVE.fullmatch(url.path):
                    self._resolve(method, match)
                elif method == "GET" and (match := _TREE.fullmatch(url.path)):
                    self._tree(match, query)
                elif method == "GET" and (match := _INFO.fullmatch(url.path)):
                    self._info(match, query)
                else:
                    self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, method)
            except _NotFound as exc:
                headers = {"X-Error-Code": exc.code, "X-Error-Message": str(exc),
                           "Content-Type": "application/json"}
                if exc.commit:
                    headers["X-Repo-Commit"] = exc.commit
                self._send(404, json.dumps({"error": str(exc)}).encode(), headers, method)

        def _send(self, status: int, body: bytes, headers: dict[str, str], method: str,
                  length: int | None = None) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def _json(self, data: object) -> None:
            self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, "GET")

        def _info(self, match: re.Match, query: dict[str, str]) -> None:
            repo, revision = match.group(1), unquote(match.group(2) or "main")
            sha = hub._commit(repo, revision)
            blobs = query.get("blobs", "").lower() == "true"
            siblings = []
            for path, data in sorted(hub._files(sha).items()):
                sibling: dict[str, object] = {"rfilename": path}
                if blobs:
                    sibling.update(size=len(data), blobId=git_blob_sha1(data))
                siblings.append(sibling)
            self._json({"_id": sha[:24], "id": repo, "author": repo.split("/")[0], "sha": sha,
                        "private": False, "gated": False, "disabled": False,
                        "lastModified": "2026-01-01T00:00:00.000Z", "tags": [],
                        "downloads": 0, "likes": 0, "siblings": siblings})

        def _tree(self, match: re.Match, query: dict[str, str]) -> None:
            repo, revision = match.group(1), unquote(match.group(2))
            base = unquote(match.group(3) or "").strip("/")
            recursive = query.get("recursive", "").lower() == "true"
            sha = hub._commit(repo, revision)
            prefix = f"{base}/" if base else ""
            entries: dict[str, dict[str, object]] = {}
            for path, data in sorted(hub._files(sha).items()):
                if not path.startswith(prefix):
                    continue
                parts = path[len(prefix):].split("/")
                for depth in range(1, len(parts)):
                    folder = prefix + "/".join(parts[:depth])
                    if recursive or depth == 1:
                        oid = hashlib.sha1(folder.encode()).hexdigest()
                        entries.setdefault(folder, {"type": "directory", "path": folder,
                                                    "size": 0, "oid": oid})
                if recursive or len(parts) == 1:
                    entries[path] = {"type": "file", "path": path, "size": len(data),
                                     "oid": git_blob_sha1(data)}
            if base and not entries:
                raise _NotFound("EntryNotFound", f"{base} does not exist", sha)
            self._json(list(entries.values()))

        def _resolve(self, method: str, match: re.Match) -> None:
            repo, revision, path = match.group(1), unquote(match.group(2)), unquote(match.group(3))
            sha = hub._commit(repo, revision)
            files = hub._files(sha)
            if path not in files:
                raise _NotFound("EntryNotFound", f"{path} does not exist", sha)
            data = files[path]
            headers = {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": sha,
                       "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            start, end, status = 0, len(data) - 1, 200
            wanted = self.headers.get("Range")
            if wanted and (range_match := _RANGE.fullmatch(wanted.strip())):
                start = int(range_match.group(1))
                end = min(int(range_match.group(2) or end), end)
                if start >= len(data):
                    headers["Content-Range"] = f"bytes */{len(data)}"
                    self._send(416, b"", headers, method)
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            body = data[start:end + 1]
            drop = hub._take_drop(path) if method == "GET" else None
            if drop is None or drop >= len(body):
                self._send(status, body, headers, method)
                return
            # An interrupted transfer: announce the whole body, send part of it, hang up.
            self._send(status, body[:drop], headers, method, length=len(body))
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def serve_fake_hub(hf_home: Path) -> Iterator[FakeHub]:
    """Runs a FakeHub and points huggingface_hub at it for the duration of the block.

    Sets ``HF_ENDPOINT`` to the fake Hub, ``HF_HOME`` (caches, token) to ``hf_home``,
    ``HF_HUB_DISABLE_XET=1``, and unsets offline mode and tokens. huggingface_hub reads these
    when it is imported, so its ``constants`` are patched too; everything is restored on exit.

    Args:
        hf_home: A temporary folder for huggingface_hub's caches; nothing touches the user's.
    """
    from huggingface_hub import constants

    hub = FakeHub().start()
    try:
        with ExitStack() as patches:
            patches.enter_context(mock.patch.dict(os.environ))
            for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
                        "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                        "HF_TOKEN_PATH"):
                os.environ.pop(var, None)
            hf_home = Path(hf_home)
            hf_home.mkdir(parents=True, exist_ok=True)
            os.environ.update({"HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home),
                               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
            patched = {
                "ENDPOINT": hub.url,
                "HUGGINGFACE_CO_URL_TEMPLATE":
                    hub.url + "/{repo_id}/resolve/{revision}/{filename}",
                "HF_HUB_OFFLINE": False,
                "HF_HUB_DISABLE_XET": True,
                "HF_HUB_DISABLE_TELEMETRY": True,
                "HF_HOME": str(hf_home),
                "HF_HUB_CACHE": str(hf_home / "hub"),
                "HF_ASSETS_CACHE": str(hf_home / "assets"),
                "HF_TOKEN_PATH": str(hf_home / "token"),
                "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
                "HF_XET_CACHE": str(hf_home / "xet"),
            }
            for name, value in patched.items():
                if hasattr(constants, name):
                    patches.enter_context(mock.patch.object(constants, name, value))
            yield hub
    finally:
        hub.close()
