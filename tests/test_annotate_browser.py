"""An annotator in a real headless Chromium (Selenium + Debian's chromium/chromedriver).

The browser opens the personal link, plays an audio-only item, answers with a key press and sees
the next item; the exported votes are what was pressed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from annotatehelpers import Server, fresh_copy, prepared_corpus

from sdme.annotate.export import export_votes
from sdme.annotate.project import open_project
from sdme.annotate.store import ImportedVote
from sdme.schema import read_annotations

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="needs Debian's chromium and chromium-driver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run")


@pytest.fixture()
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="sdme-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_annotator_plays_audio_and_answers_with_keys(browser, tmp_path_factory, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    raw = fresh_copy(prepared_corpus(tmp_path_factory), tmp_path / "raw")
    project = open_project(raw, votes_per_item=1, modalities=["audio", "vision"])
    store = project.store
    # Others already gave the vision items of all clips but the first their one vote, so this
    # annotator gets an audio item first or second, whatever the (random) order.
    clip_ids = [c.clip_id for c in project.clips]
    store.import_votes("test", [ImportedVote(f"other{i}", cid, "vision", "neutral", 0.0, cid)
                                for i, cid in enumerate(clip_ids[1:])])
    imported = {(cid, "vision"): ("neutral",) for cid in clip_ids[1:]}
    token = store.add_person("eve")
    me = store.authenticate(token)
    taxonomy = project.taxonomy
    wait = WebDriverWait(browser, 15)
    pressed: dict[tuple[str, str], str] = {}
    with Server(raw) as server:
        browser.get(f"{server.url}/login?token={token}")
        wait.until(lambda d: d.execute_script("return document.body.dataset.state") == "ready")
        assert "token" not in browser.current_url  # the token left the address bar
        body = browser.find_element(By.TAG_NAME, "body")
        played_audio = False
        for step in range(2):
            item = browser.execute_script("return document.body.dataset.item")
            modality = browser.execute_script("return document.body.dataset.modality")
            buttons = [b.get_attribute("data-label")
                       for b in browser.find_elements(By.CSS_SELECTOR, "#choices button")]
            assert buttons == list(taxonomy)
            if modality == "audio":
                body.send_keys(Keys.SPACE)  # a key press: the browser lets the page play sound
                wait.until(lambda d: d.execute_script(
                    "const a = document.querySelector('#stage audio');"
                    "return a !== null && a.played.length > 0 && a.currentTime > 0.2;"))
                assert browser.execute_script("return document.querySelector('video')") is None
                played_audio = True
            elif modality == "vision":
                assert browser.execute_script(
                    "return document.querySelector('#stage video').muted") is True
            key = step % len(taxonomy)
            body.send_keys(str(key + 1))
            wait.until(lambda d, old=item: d.execute_script(
                "return document.body.dataset.item") != old
                or d.execute_script("return document.body.dataset.state") == "done")
            assignment = store.assignment(me.id, item)
            pressed[(assignment.clip_id, assignment.modality)] = taxonomy[key]
            if played_audio:
                break
        assert played_audio, "no audio item came up"
        assert browser.execute_script("return document.body.dataset.state") in ("ready", "done")
    export_votes(raw)
    clips = {c.clip_id: c for c in read_annotations(raw / "annotations.csv")}
    exported = {(cid, m): clip.votes(m) for cid, clip in clips.items()
                for m in ("audio", "vision") if clip.votes(m)}  # text is not collected here
    assert exported == {**imported, **{key: (label,) for key, label in pressed.items()}}
