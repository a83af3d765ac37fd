"""The Templates browser and the animated latent preview, in ComfyUI's own web frontend (headless chromium).

Every template of the pack is a card with its thumbnail loaded; while a template samples, the sampler node's
preview receives a stream of different pictures (the clip's frames in turn), not one still per step.
Screenshots go to ``RELIGHTVID_SCREENSHOTS`` for a person to look at.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from harness import PACK_FOLDER
from test_frontend import CHROMIUM, SCREENSHOTS, SETTINGS, UI_FILES, _browser_missing, _tweaks

HERE = Path(__file__).resolve().parent
PACK_CATEGORY = PACK_FOLDER  # the Templates browser lists a pack under its folder name
PREVIEW_TIMEOUT_MS = 900_000
PREVIEWS_WANTED = 12  # more than the run's 2 steps could send as stills


def _frontend(server, tmp_path, command: str, job: dict) -> dict:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    server.post("/settings", SETTINGS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{command}.json"
    path.write_text(json.dumps({"url": server.url, "chromium": CHROMIUM, "profile": str(tmp_path / "profile"), **job}))
    done = subprocess.run(
        ["node", str(HERE / "frontend.js"), command, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(done.stdout)
    assert result["errors"] == [], result["errors"]
    return result


def _wait_until_idle(server, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while server.get("/queue") != {"queue_running": [], "queue_pending": []}:
        assert time.monotonic() < deadline, "the cancelled run did not stop"
        time.sleep(2)


def test_templates_browser_shows_every_template_with_its_thumbnail(server, tmp_path):
    job = {
        "category": PACK_CATEGORY,
        "names": [path.stem for path in UI_FILES],
        "screenshot": str(SCREENSHOTS / "templates.png"),
    }
    cards = _frontend(server, tmp_path, "templates", job)["cards"]
    assert [card["name"] for card in cards if card["found"]] == job["names"], cards  # every template is listed
    assert all(card["loaded"] and card["width"] > 0 for card in cards), cards  # each with its picture


@pytest.mark.parametrize(("name", "sampler_id"), [("relightvid_background_video", "15"), ("relightvid_ksampler", "15")])
def test_sampler_preview_plays_the_clip_frames(server, tmp_path, name, sampler_id):
    path = next(p for p in UI_FILES if p.stem == name)
    job = {
        "path": str(path),
        "nodeCount": len(json.loads(path.read_text())["nodes"]),
        "tweaks": _tweaks(name, 7),
        "samplerId": sampler_id,
        "scale": 1.0,
        "previews": PREVIEWS_WANTED,
        "timeoutMs": PREVIEW_TIMEOUT_MS,
        "screenshot": str(SCREENSHOTS / f"preview_{name}.png"),
    }
    result = _frontend(server, tmp_path, "preview", job)
    _wait_until_idle(server)  # the page pressed Cancel; the run stops at its next U-Net call
    assert result["previews"] >= PREVIEWS_WANTED, result
    assert len(set(result["fingerprints"])) >= 2, result  # different pictures: the frames in turn
