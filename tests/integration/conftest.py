"""Integration tests against a real ComfyUI: skipped, saying why, unless ``COMFYUI_PATH`` names a ComfyUI checkout.

Environment: ``COMFYUI_PATH`` (required), ``COMFYUI_PYTHON`` (the interpreter ComfyUI runs with; default this
one), ``RELIGHTVID_TEST_CACHE`` (where the random full-size weights are written once; default
/tmp/relightvid-test-cache), ``NODE_PATH`` (a node_modules folder with playwright-core, for the browser test),
``CHROMIUM`` (default /usr/bin/chromium), ``RELIGHTVID_SCREENSHOTS`` (default /tmp/relightvid-screens).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from weights import ensure_weights  # noqa: E402

TOOLS = HERE.parents[1] / "workflows"


def pytest_collection_modifyitems(config, items):
    if harness.comfyui_path() is None:
        skip = pytest.mark.skip(reason="COMFYUI_PATH is not set: these tests start a real ComfyUI from that checkout")
        for item in items:
            if HERE in Path(item.fspath).parents:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    comfy = harness.comfyui_path()
    if comfy is None or not (comfy / "main.py").is_file():
        pytest.skip(f"COMFYUI_PATH={comfy} is not a ComfyUI checkout (no main.py)")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    running = harness.start_server(comfy, tmp_path_factory.mktemp("comfyui"), ensure_weights(), python)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def queue_tool():
    """workflows/queue_workflow.py, imported from its file (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("relightvid_queue_workflow", TOOLS / "queue_workflow.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
