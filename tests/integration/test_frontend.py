"""Each UI workflow in ComfyUI's web frontend (headless Debian chromium): opened as a user opens a file, no
missing-node dialog or page error, converted to the same API graph as its twin, queued from the Run button
with the run shrunk to test size, finished successfully; a screenshot of each is saved. And what the user is
shown when the server refuses a bad widget value when queued."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import seed_setting, small_run_settings

HERE = Path(__file__).resolve().parent
WORKFLOWS = HERE.parents[1] / "example_workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RELIGHTVID_SCREENSHOTS", "/tmp/relightvid-screens"))
SETTINGS = {
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
    "Comfy.TutorialCompleted": True,
}
RUN_TIMEOUT_MS = 900_000
# Inputs graphToPrompt adds for the frontend's own preview widgets (Load Video's player); the server ignores them.
FRONTEND_PREVIEW_INPUTS = {"video-preview"}


def _browser_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    probe = subprocess.run(["node", "-e", "require.resolve('playwright-core')"], capture_output=True)
    if probe.returncode != 0:
        return "playwright-core not found by node (npm install playwright-core, then set NODE_PATH to its node_modules)"
    return None


def _tweaks(name: str, seed: int) -> dict:
    """The test-size settings as widget edits: {node id: {widget: value}}."""
    tweaks: dict[str, dict] = {}
    for assignment in small_run_settings(name, f"browser_{name}") + [seed_setting(name, seed)]:
        target, _, value = assignment.partition("=")
        node_id, _, widget = target.partition(".")
        tweaks.setdefault(node_id, {})[widget] = json.loads(value) if value[:1].isdigit() else value
    return tweaks


@pytest.fixture(scope="module")
def frontend_results(server, tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    server.post("/settings", SETTINGS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    workdir = tmp_path_factory.mktemp("browser")
    entries = []
    for number, path in enumerate(UI_FILES):
        ui = json.loads(path.read_text())
        entries.append(
            {
                "name": path.stem,
                "path": str(path),
                "nodeCount": len(ui["nodes"]),
                "tweaks": _tweaks(path.stem, 100 + number),
                "screenshot": str(SCREENSHOTS / f"{path.stem}.png"),
                "timeoutMs": RUN_TIMEOUT_MS,
            }
        )
    job = workdir / "job.json"
    job.write_text(
        json.dumps({"url": server.url, "chromium": CHROMIUM, "profile": str(workdir / "profile"), "workflows": entries})
    )
    completed = subprocess.run(
        ["node", str(HERE / "frontend.js"), "check", str(job)],
        capture_output=True,
        text=True,
        timeout=len(entries) * RUN_TIMEOUT_MS / 1000 + 300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {result["name"]: result for result in json.loads(completed.stdout)}


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_frontend_opens_converts_and_runs_the_workflow(frontend_results, path):
    result = frontend_results[path.stem]
    assert not result["missingDialog"], "the frontend reported missing nodes"
    assert not result["errors"], result["errors"]
    twin = json.loads((WORKFLOWS / "api" / path.name).read_text())
    expected = {node_id: (node["class_type"], node["inputs"]) for node_id, node in twin.items()}
    converted = {
        node_id: (node["class_type"], {k: v for k, v in node["inputs"].items() if k not in FRONTEND_PREVIEW_INPUTS})
        for node_id, node in result["prompt"].items()
    }
    assert converted == expected
    assert result["outcome"]["type"] == "execution_success", result["outcome"]
    assert Path(SCREENSHOTS / f"{path.stem}.png").is_file()


@pytest.mark.parametrize(
    "tweaks, expected",
    [
        ({"15": {"iie_factors": "bright"}}, "iie_factors must be numbers"),
        ({"15": {"window_length": 8, "window_overlap": 8}}, "window_overlap must be smaller than window_length (8)"),
    ],
    ids=["iie factors", "overlap equals length"],
)
def test_frontend_shows_a_refused_setting_once(server, tmp_path, tweaks, expected):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    server.post("/settings", SETTINGS)
    path = WORKFLOWS / "relightvid_light_preset.json"
    screenshot = SCREENSHOTS / f"refused_{'_'.join(tweaks['15'])}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "url": server.url,
                "chromium": CHROMIUM,
                "profile": str(tmp_path / "profile"),
                "path": str(path),
                "nodeCount": len(json.loads(path.read_text())["nodes"]),
                # The test-size settings (the test's model files among them), then the bad value.
                "tweaks": {
                    node: {**values, **tweaks.get(node, {})} for node, values in {**tweaks, **_tweaks(path.stem, 1)}.items()
                },
                "expect": expected,
                "screenshot": str(screenshot),
            }
        )
    )
    completed = subprocess.run(
        ["node", str(HERE / "frontend.js"), "refuse", str(job)], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (result,) = json.loads(completed.stdout)
    assert not result["errors"], result["errors"]
    assert expected not in result["before"]
    assert result["shown"].count(expected) == 1, result["shown"]
    assert list(result["nodeErrors"]) == ["15"] and len(result["nodeErrors"]["15"]["errors"]) == 1, result["nodeErrors"]
    assert result["marked"] == [], result["marked"]  # no widget is marked for a problem it does not have
    assert screenshot.is_file()
