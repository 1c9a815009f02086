"""The real ``sdme annotate serve`` (uvicorn on 127.0.0.1, a free port) driven over HTTP."""

from __future__ import annotations

import json
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from annotatehelpers import CLIPS, Server, fresh_copy, http, prepared_corpus
from click.testing import CliRunner

from sdme.annotate.project import open_project
from sdme.cli import main
from sdme.relevance import fleiss_kappa
from sdme.schema import read_annotations

TAXONOMY = ["neutral", "happiness", "sadness", "anger", "surprise", "fear", "disgust"]


def add(raw, name: str) -> str:
    result = CliRunner().invoke(main, ["annotate", "add-annotator", str(raw), name])
    assert result.exit_code == 0, result.output
    link = result.output.splitlines()[0]
    assert "/login?token=" in link
    return link.rsplit("token=", 1)[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    raw = fresh_copy(prepared_corpus(tmp_path_factory), tmp_path_factory.mktemp("s") / "raw")
    with Server(raw, "--votes-per-item", "2") as server:
        yield raw, server


def raw_get(url: str, path: str, token: str) -> tuple[int, bytes]:
    """A request whose path is sent exactly as written (urllib would normalise ``..``)."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.putheader("Authorization", f"Bearer {token}")
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_every_route_needs_a_valid_token(served):
    raw, server = served
    for method, path in [("GET", "/"), ("GET", "/dashboard"), ("GET", "/api/next"),
                         ("GET", "/api/dashboard"), ("GET", "/media/abc"),
                         ("GET", "/no/such/page"), ("POST", "/api/vote"),
                         ("GET", "/login?token=wrong"), ("GET", "/docs"),
                         ("GET", "/openapi.json")]:
        assert http(method, server.url + path).status == 401, path
        assert http(method, server.url + path, token="not-a-token").status == 401, path
    token = add(raw, "revoked-soon")
    assert http("GET", server.url + "/api/next", token=token).status == 200
    assert CliRunner().invoke(main, ["annotate", "revoke", str(raw), "revoked-soon"]).exit_code \
        == 0
    assert http("GET", server.url + "/api/next", token=token).status == 401


def test_login_sets_a_strict_cookie_and_roles_are_separate(served):
    raw, server = served
    token = add(raw, "ana")
    login = http("GET", f"{server.url}/login?token={token}")
    assert login.status == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    name_value = cookie.split(";")[0]
    page = http("GET", server.url + "/", headers={"Cookie": name_value})
    assert page.status == 200 and b"SDME annotation" in page.body
    assert "nonce-" in page.headers["content-security-policy"]
    assert http("GET", server.url + "/api/dashboard", token=token).status == 403
    assert http("GET", server.url + "/api/next", token=server.owner).status == 403
    owner = http("GET", f"{server.url}/login?token={server.owner}")
    assert owner.headers["location"] == "/dashboard"
    # A state change from another site is refused even with the right credentials.
    item = http("GET", server.url + "/api/next", token=token).json()["item"]
    forged = http("POST", server.url + "/api/vote", token=token,
                  body={"assignment": item["id"], "label": "neutral"},
                  headers={"Origin": "http://evil.example"})
    assert forged.status == 403


def test_annotator_sees_one_isolated_item_and_cannot_cheat(served):
    raw, server = served
    me, other = add(raw, "bo"), add(raw, "cy")
    seen_clips = set()
    for _ in range(len(CLIPS)):
        reply = http("GET", server.url + "/api/next", token=me)
        assert reply.status == 200
        data = reply.json()
        assert data["taxonomy"] == TAXONOMY and data["name"] == "bo"
        item = data["item"]
        assert not any(cid.encode() in reply.body for cid in CLIPS)  # the clip id never shows
        vote = {"assignment": item["id"], "label": "anger"}
        if item["modality"] == "text":
            assert item["media"] is None and item["text"]
        else:
            media = http("GET", server.url + item["media"], token=me)
            assert media.status == 200 and len(media.body) > 1000
            kind = "video/mp4" if item["modality"] == "vision" else "audio/mp4"
            assert media.headers["content-type"] == kind
            part = http("GET", server.url + item["media"], token=me,
                        headers={"Range": "bytes=0-99"})
            assert part.status == 206 and len(part.body) == 100  # browsers seek with ranges
            assert http("GET", server.url + item["media"], token=other).status == 404
        assert http("POST", server.url + "/api/vote", token=me,
                    body={**vote, "label": "joy"}).status == 422
        assert http("POST", server.url + "/api/vote", token=other, body=vote).status == 404
        assert http("POST", server.url + "/api/vote", token=me,
                    body=json.dumps(vote), headers={"Content-Type": "text/plain"}).status == 422
        assert http("POST", server.url + "/api/vote", token=me, body=vote).json() == \
            {"ok": True, "duplicate": False}
        assert http("POST", server.url + "/api/vote", token=me, body=vote).json() == \
            {"ok": True, "duplicate": True}
        assert http("POST", server.url + "/api/vote", token=me,
                    body={**vote, "label": "fear"}).status == 409
        assert http("POST", server.url + "/api/skip", token=me,
                    body={"assignment": item["id"]}).status == 409
        seen_clips.add(item["id"])
    done = http("GET", server.url + "/api/next", token=me).json()
    assert done["item"] is None and done["progress"]["answered"] == len(CLIPS)
    # One vote per clip (one modality each), all stored as given.
    mine = [v for v in open_project(raw).store.votes() if v.annotator == "bo"]
    assert sorted(v.clip_id for v in mine) == sorted(CLIPS)
    assert {v.label for v in mine} == {"anger"}
    # No path names a file outside the prepared media: the server never takes one.
    manifest = (raw / "sdme.json").read_bytes()[:40]
    for path in ["/media/../sdme.json", "/media/..%2F..%2Fsdme.json",
                 "/media/%2e%2e/%2e%2e/sdme.json", "/media/" + "..%2F" * 8 + "etc%2Fpasswd",
                 "/media/.annotate/annotate.sqlite3", "/../../sdme.json"]:
        status, body = raw_get(server.url, path, me)
        assert status in (400, 404), path
        assert manifest not in body and b"root:" not in body


def test_dashboard_shows_progress_and_the_projects_kappa(served):
    raw, server = served
    tokens = [add(raw, f"rater{i}") for i in range(3)]
    for n, token in enumerate(tokens):
        for _ in range(2):
            item = http("GET", server.url + "/api/next", token=token).json()["item"]
            if item is None:
                break
            label = TAXONOMY[n % 2]
            assert http("POST", server.url + "/api/vote", token=token,
                        body={"assignment": item["id"], "label": label}).status == 200
    page = http("GET", server.url + "/dashboard", token=server.owner)
    assert page.status == 200 and b"Fleiss" in page.body
    board = http("GET", server.url + "/api/dashboard", token=server.owner).json()
    votes = open_project(raw).store.votes()
    for m, row in board["modalities"].items():
        per_item = {}
        for v in votes:
            if v.modality == m:
                per_item.setdefault(v.clip_id, []).append(v.label)
        assert row["votes"] == sum(len(x) for x in per_item.values())
        expected = fleiss_kappa(list(per_item.values()), TAXONOMY)
        assert row["kappa"] == (None if expected is None else round(expected, 4))
    names = [a["name"] for a in board["annotators"]]
    assert {"rater0", "rater1", "rater2"} <= set(names)
    assert board["annotators_needed"] == 6 and board["settings"]["votes_per_item"] == 2


def test_acknowledged_vote_survives_kill_9_then_exports_and_validates(tmp_path_factory,
                                                                      tmp_path):
    raw = fresh_copy(prepared_corpus(tmp_path_factory), tmp_path / "raw")
    token = add(raw, "dee")
    server = Server(raw)
    try:
        item = http("GET", server.url + "/api/next", token=token).json()["item"]
        ack = http("POST", server.url + "/api/vote", token=token,
                   body={"assignment": item["id"], "label": "sadness"})
        assert ack.status == 200
        shown = http("GET", server.url + "/api/next", token=token).json()["item"]  # on screen
        server.kill()
        assert server.process.returncode == -9
    finally:
        server.stop()
    with Server(raw) as again:  # a new process on the same files
        retry = http("POST", again.url + "/api/vote", token=token,
                     body={"assignment": item["id"], "label": "sadness"})
        assert retry.json() == {"ok": True, "duplicate": True}
        following = http("GET", again.url + "/api/next", token=token).json()
        assert following["item"] == shown  # the annotator resumes where they were
        assert following["progress"]["answered"] == 1
        board = http("GET", again.url + "/api/dashboard", token=again.owner).json()
        assert board["modalities"][item["modality"]]["votes"] == 1
    (vote,) = open_project(raw).store.votes()
    before = (raw / "annotations.csv").read_text(encoding="utf-8")
    result = CliRunner().invoke(main, ["annotate", "export", str(raw)])
    assert result.exit_code == 0, result.output
    clips = {c.clip_id: c for c in read_annotations(raw / "annotations.csv")}
    assert clips[vote.clip_id].votes(vote.modality) == ("sadness",)
    backups = list((raw / ".annotate" / "backups").iterdir())
    assert (backups[0] / "annotations.csv").read_text(encoding="utf-8") == before
    check = CliRunner().invoke(main, ["validate", "--no-media", str(raw)])  # export left the
    # media alone; decoding them here would only time torch's import
    assert check.exit_code == 0, check.output
    assert "raw corpus OK" in check.output and "fleiss_kappa" in check.output


def test_loopback_by_default_and_a_taken_port_is_a_clear_error():
    from sdme.annotate import AnnotateError
    from sdme.annotate.server import EXPOSURE_WARNING, bind, is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "example.org"))
    assert "plain HTTP" in EXPOSURE_WARNING and "SSH tunnel" in EXPOSURE_WARNING
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(AnnotateError, match="--port"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
