"""Regenerate the UI workflows (``example_workflows/*.json``) from their API twins with ComfyUI's own frontend.

    COMFYUI_PATH=... COMFYUI_PYTHON=... NODE_PATH=.../node_modules \\
        .venv/bin/python tests/integration/build_workflows.py [--url http://127.0.0.1:8188]

Without ``--url`` a temporary server is started as the integration tests start it. The API files come from
``workflows/specs.py`` (run it first after changing a graph); each UI file is what the frontend saves after
loading the API graph, laying it out in its template's ``stacks`` of groups, adding the Note
(``specs.note_text``) and the ``OPENING_GROUPS`` right of them, and the model files' download metadata
(``specs.node_models``); it opens at :data:`VIEW` on the Note and the opening groups.
``--only NAME ...`` rebuilds just those templates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "workflows"), str(HERE.parent)]

import harness
import specs
from weights import ensure_weights

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SETTINGS = {
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
    "Comfy.TutorialCompleted": True,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
}
ORIGIN, GAP, GROUP_PADDING = (40, 40), 40, 12
NOTE_WIDTH = 400  # the Note is made as tall as its text
# Load Video and Load Image show the picked file under their widgets.
PREVIEW_TYPES, PREVIEW_HEIGHT = ["LoadVideo", "LoadImage"], 250
# The opening view: the Note and the opening groups at 1.25x, where the Note's 10 px text (the frontend's
# default textarea font) reads at 12.5 px; left and top are screen pixels from the canvas's corner, below the
# workflow tabs. The graph ends OPENING_GAP graph units left of the Note, out of that view.
VIEW = {"scale": 1.25, "left": 16, "top": 52}
OPENING_GAP = 120


def run_frontend(command: str, job: dict, workdir: Path) -> list[dict]:
    job_path = workdir / f"{command}-job.json"
    job_path.write_text(json.dumps({**job, "chromium": CHROMIUM, "profile": str(workdir / f"profile-{command}")}))
    completed = subprocess.run(
        ["node", str(HERE / "frontend.js"), command, str(job_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"frontend.js {command} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def build(url: str, workdir: Path, only: list[str] | None = None) -> list[Path]:
    harness_post(url, "/settings", SETTINGS)
    entries = []
    for name, template in specs.WORKFLOWS.items():
        if only and name not in only:
            continue
        api = json.loads((specs.API_DIR / f"{name}.json").read_text())
        entries.append(
            {
                "name": name,
                "api": api,
                "note": specs.note_text(name),
                "noteWidth": NOTE_WIDTH,
                "models": specs.node_models(name),
                "stacks": template.stacks,
                "openingGroups": specs.OPENING_GROUPS,
                "origin": ORIGIN,
                "gap": GAP,
                "groupPadding": GROUP_PADDING,
                "openingGap": OPENING_GAP,
                "view": VIEW,
                "previewTypes": PREVIEW_TYPES,
                "previewHeight": PREVIEW_HEIGHT,
            }
        )
    written = []
    for result in run_frontend("build", {"url": url, "workflows": entries}, workdir):
        if result["errors"]:
            raise RuntimeError(f"{result['name']}: page errors while building: {result['errors']}")
        loaded = {str(node["id"]) for node in result["graph"]["nodes"] if node["type"] != "Note"}
        api_ids = next(set(entry["api"]) for entry in entries if entry["name"] == result["name"])
        if loaded != api_ids:  # loadApiJson keeps the previous graph when a node type is missing
            raise RuntimeError(f"{result['name']}: the frontend did not load the API graph (a node type missing?)")
        path = specs.UI_DIR / f"{result['name']}.json"
        # loadApiJson leaves the all-zero id; a saved workflow has its own, stable here across rebuilds.
        graph = {**result["graph"], "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"relightvid/workflows/{result['name']}"))}
        graph["extra"] = {**graph.get("extra", {}), "ds": result["ds"]}
        path.write_text(json.dumps(graph, indent=2) + "\n")
        written.append(path)
    return written


def harness_post(url: str, path: str, body: dict) -> None:
    import urllib.request

    request = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running ComfyUI with this pack (default: start one from COMFYUI_PATH)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="rebuild only these templates (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relightvid-build-") as folder:
        workdir = Path(folder)
        server = None
        if args.url is None:
            comfy = harness.comfyui_path()
            if comfy is None:
                print("set COMFYUI_PATH (or pass --url)", file=sys.stderr)
                return 2
            server = harness.start_server(
                comfy, workdir / "comfy", ensure_weights(), os.environ.get("COMFYUI_PYTHON", sys.executable)
            )
        try:
            for path in build(args.url or server.url, workdir, args.only):
                print(path)
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
