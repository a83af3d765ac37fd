"""Each UI workflow in ComfyUI's web frontend (headless Debian chromium): opened as a user opens a file, no
missing-node dialog or page error, converted to the same API graph as its twin, queued from the Run button
with the run shrunk to test size, finished successfully; a screenshot of each is saved. What the user is
shown when the server refuses a bad widget value when queued. The view each template opens on, on a 1280x800
page: its result and a legible Note, nothing cut by the edges or under the minimap, no group over another. And
the missing-models dialog listing the model files the server lacks, with their downloads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from build_workflows import specs
from harness import seed_setting, small_run_settings

HERE = Path(__file__).resolve().parent
WORKFLOWS = HERE.parents[1] / "example_workflows"
# In the order whose run times the Notes give (the first run loads the models).
UI_FILES = [WORKFLOWS / f"{name}.json" for name in specs.RUN_ORDER]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RELIGHTVID_SCREENSHOTS", "/tmp/relightvid-screens"))
SETTINGS = {
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
    "Comfy.TutorialCompleted": True,
    # The test server has the model files under other names: the dialog is checked on its own, below.
    "Comfy.Workflow.ShowMissingModelsWarning": False,
}
# The page a template must open legibly on, and the smallest font its Note may be drawn at there.
OPENING_VIEWPORT = {"width": 1280, "height": 800}
MIN_NOTE_FONT_PX = 12.0
# Frontend 1.27.10's missing-models dialog downloads only these suffixes (MissingModelsWarning, allowedSuffixes).
DOWNLOADABLE_SUFFIXES = (".safetensors", ".sft")
RUN_TIMEOUT_MS = 900_000
# Inputs graphToPrompt adds for the frontend's own preview widgets (Load Video's player); the server ignores them.
FRONTEND_PREVIEW_INPUTS = {"video-preview"}


def _browser_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    probe = subprocess.run(["node", "-e", "require.resolve('playwright-core')"], check=False, capture_output=True)
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
        check=False,
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
                    node: {**values, **tweaks.get(node, {})}
                    for node, values in {**tweaks, **_tweaks(path.stem, 1)}.items()
                },
                "expect": expected,
                "screenshot": str(screenshot),
            }
        )
    )
    completed = subprocess.run(
        ["node", str(HERE / "frontend.js"), "refuse", str(job)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (result,) = json.loads(completed.stdout)
    assert not result["errors"], result["errors"]
    assert expected not in result["before"]
    assert result["shown"].count(expected) == 1, result["shown"]
    assert list(result["nodeErrors"]) == ["15"] and len(result["nodeErrors"]["15"]["errors"]) == 1, result["nodeErrors"]
    assert result["marked"] == [], result["marked"]  # no widget is marked for a problem it does not have
    assert screenshot.is_file()


def _run_frontend(command: str, job: dict, workdir: Path, timeout: float) -> list[dict]:
    path = workdir / f"{command}.json"
    path.write_text(json.dumps({"chromium": CHROMIUM, "profile": str(workdir / f"profile-{command}"), **job}))
    completed = subprocess.run(
        ["node", str(HERE / "frontend.js"), command, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def _opening_groups() -> list[str]:
    return [group[0] for group in specs.OPENING_GROUPS]


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(rect: list[float], box: list[float], slack: float = 0.5) -> bool:
    return (
        rect[0] >= box[0] - slack
        and rect[1] >= box[1] - slack
        and rect[0] + rect[2] <= box[0] + box[2] + slack
        and rect[1] + rect[3] <= box[1] + box[3] + slack
    )


@pytest.fixture(scope="module")
def opening_views(server, tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    server.post("/settings", SETTINGS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "name": path.stem,
            "path": str(path),
            "nodeCount": len(json.loads(path.read_text())["nodes"]),
            "screenshot": str(SCREENSHOTS / f"opening_{path.stem}.png"),
        }
        for path in UI_FILES
    ]
    job = {"url": server.url, "viewport": OPENING_VIEWPORT, "workflows": entries}
    results = _run_frontend("opening", job, tmp_path_factory.mktemp("opening"), timeout=60 * len(entries) + 120)
    return {result["name"]: result for result in results}


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_template_opens_on_its_result_with_a_legible_note(opening_views, path):
    view = opening_views[path.stem]
    assert not view["errors"], view["errors"]
    canvas, covers = view["canvas"], view["covers"]
    assert any("minimap" in cover["what"] for cover in covers), covers  # the check sees what it must avoid
    note = view["note"]
    assert note["shown"] and note["fontPx"] >= MIN_NOTE_FONT_PX, note
    assert note["overflow"] <= 0, f"the Note's text needs scrolling ({note['overflow']} px more)"
    nodes = {node["id"]: node for node in view["nodes"]}
    groups = {group["title"]: group for group in view["groups"]}
    # Open on the result: the Note, the opening groups and their nodes wholly on the canvas.
    wanted = [nodes[note["id"]]["rect"]]
    for title in _opening_groups():
        wanted += [groups[title]["rect"], *(nodes[node_id]["rect"] for node_id in groups[title]["nodes"])]
    assert groups[_opening_groups()[0]]["nodes"], "the output group holds no node"
    assert all(_inside(rect, canvas) for rect in wanted), (canvas, wanted)
    # Everything else wholly on the canvas or wholly off it, and nothing on it under the minimap, the canvas
    # menu, the workflow tabs or the canvas info.
    items = [(f"node {node['id']} {node['type']}", node["rect"]) for node in view["nodes"]]
    items += [(f"group {group['title']}", group["rect"]) for group in view["groups"]]
    cut = [name for name, rect in items if _overlap(rect, canvas) and not _inside(rect, canvas)]
    assert not cut, f"cut by the canvas's edge: {cut}"
    covered = [
        (name, cover["what"])
        for name, rect in items
        if _inside(rect, canvas)
        for cover in covers
        if _overlap(rect, cover["rect"])
    ]
    assert not covered, covered
    # No group over another, and every group title within its own group.
    titles = sorted(groups)
    overlapping = [
        (a, b) for i, a in enumerate(titles) for b in titles[i + 1 :] if _overlap(groups[a]["rect"], groups[b]["rect"])
    ]
    assert not overlapping, overlapping
    assert all(group["titleWidth"] <= group["rect"][2] + 0.5 for group in view["groups"]), view["groups"]


def _models_metadata(path: Path) -> list[dict]:
    ui = json.loads(path.read_text())
    return [entry for node in ui["nodes"] for entry in node.get("properties", {}).get("models", [])]


def test_opening_a_template_lists_its_missing_model_files_with_their_downloads(server, tmp_path):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    folders = {folder["name"] for folder in server.get("/experiment/models")}
    paths = server.get("/internal/folder_paths")
    entries = [
        {
            "name": path.stem,
            "path": str(path),
            "nodeCount": len(json.loads(path.read_text())["nodes"]),
            "screenshot": str(SCREENSHOTS / f"missing_models_{path.stem}.png"),
        }
        for path in UI_FILES
    ]
    # The warning on, and no restored workflow whose dialog would stand in for the opened one's.
    server.post(
        "/settings", {**SETTINGS, "Comfy.Workflow.ShowMissingModelsWarning": True, "Comfy.Workflow.Persist": False}
    )
    try:
        results = _run_frontend("models", {"url": server.url, "workflows": entries}, tmp_path, 60 * len(entries) + 120)
    finally:
        server.post("/settings", {**SETTINGS, "Comfy.Workflow.Persist": True})
    shown = {result["name"]: result for result in results}
    for path in UI_FILES:
        metadata = _models_metadata(path)
        assert {entry["directory"] for entry in metadata} <= folders & set(paths), metadata  # folders it knows
        assert all(entry["url"].startswith("https://huggingface.co/") for entry in metadata), metadata
        present = {entry["name"] for entry in metadata if entry["name"] in server.get(f"/models/{entry['directory']}")}
        missing = [entry for entry in metadata if entry["name"] not in present]
        result = shown[path.stem]
        assert not result["errors"], result["errors"]
        assert missing, "the test server lacks every model file the templates name"  # the dialog must show
        assert len(result["entries"]) == len(missing), (missing, result["entries"])
        for entry in missing:
            label = f"{entry['directory']} / {entry['name']}"
            listed = [shown_entry for shown_entry in result["entries"] if label in shown_entry["text"]]
            assert len(listed) == 1, (label, result["entries"])
            assert listed[0]["url"] == entry["url"], listed
            assert listed[0]["enabled"] == entry["name"].endswith(DOWNLOADABLE_SUFFIXES), listed
