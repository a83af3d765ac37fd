"""Import hygiene: the library, the command line's help and the node pack load none of the heavy or optional
modules, and each optional one missing disables only its own feature, with one sentence naming what to install.

Every check runs in a fresh interpreter, since this test process has long imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Optional packages, and the modules that cost seconds to import (diffusers' single-file loaders above all) or
# that only one feature needs (OpenEXR: .exr maps; kornia: SSIM).
OPTIONAL = ("cv2", "av")
HEAVY = (
    *OPTIONAL,
    "OpenEXR",
    "kornia",
    "diffusers",
    "diffusers.loaders.single_file_utils",
    "transformers",
    "huggingface_hub",
)
PRELUDE = f"""
import json, sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
HEAVY = {HEAVY!r}
def loaded():
    return sorted(name for name in HEAVY if sys.modules.get(name) is not None)
"""


def _run(code: str, blocked: tuple[str, ...] = ()) -> dict:
    """Run ``code`` (after PRELUDE, with ``blocked`` modules made unimportable) and parse its last printed line."""
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + block + code], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _is_one_sentence_naming_a_fix(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "pip install" in message


def test_import_relightvid_core_loads_nothing_heavy_not_even_torch():
    seen = _run("import relightvid_core\nprint(json.dumps({'heavy': loaded(), 'torch': 'torch' in sys.modules}))")
    assert seen == {"heavy": [], "torch": False}


def test_help_of_the_command_line_imports_no_torch():
    seen = _run(
        "import contextlib, io, runpy\n"
        "sys.argv = ['relightvid', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    runpy.run_module('relightvid_core', run_name='__main__')\n"
        "print(json.dumps({'heavy': loaded(), 'torch': 'torch' in sys.modules, 'usage': 'relight' in out.getvalue()}))"
    )
    assert seen == {"heavy": [], "torch": False, "usage": True}


def test_loading_the_node_pack_imports_no_optional_or_heavy_module():
    seen = _run(
        "from _support.comfy_fakes import load_pack\n"
        "pack = load_pack()\n"
        "print(json.dumps({'heavy': loaded(), 'nodes': len(pack.NODE_CLASS_MAPPINGS)}))"
    )
    assert seen["heavy"] == [] and seen["nodes"] >= 10


# Per optional module: code (the pack loaded as ``pack``, its library as ``core``) that uses the feature.
FEATURES = {
    "cv2": "core.conditioning.prepare_masks(torch.ones(1, 8, 8), 8, 8, 1, grow=1)",
    "av": "core.video_io.read_video(video)",
}


@pytest.mark.parametrize("module", OPTIONAL)
def test_pack_loads_without_an_optional_module_and_its_feature_says_what_to_install(module, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: the import fails first")
    seen = _run(
        "import torch\n"
        "from _support.comfy_fakes import load_pack\n"
        "pack = load_pack()\n"
        "core = sys.modules[pack.__name__ + '.relightvid_core']\n"
        "import importlib\n"
        "for part in ('conditioning', 'video_io'):\n"
        "    importlib.import_module(pack.__name__ + '.relightvid_core.' + part)\n"
        f"video = {str(video)!r}\n"
        "try:\n"
        f"    {FEATURES[module]}\n"
        "    error = None\n"
        "except core.errors.MissingDependencyError as caught:\n"
        "    error = str(caught)\n"
        "print(json.dumps({'nodes': len(pack.NODE_CLASS_MAPPINGS), 'error': error}))",
        blocked=(module,),
    )
    assert seen["nodes"] >= 10
    assert seen["error"] is not None and _is_one_sentence_naming_a_fix(seen["error"]), seen["error"]


def test_metrics_node_without_opencv_gives_the_other_metrics_and_the_reason():
    seen = _run(
        "import math, torch\n"
        "from _support.comfy_fakes import load_pack\n"
        "pack = load_pack()\n"
        "clip = torch.rand(3, 16, 16, 3, generator=torch.Generator().manual_seed(0))\n"
        "warp, flicker, psnr, ssim, summary, plot = pack.NODE_CLASS_MAPPINGS['RelightVidTemporalMetrics']().measure("
        "clip, clip * 0.9)\n"
        "print(json.dumps({'warp_is_nan': math.isnan(warp), 'flicker': flicker, 'ssim': ssim, 'summary': summary}))",
        blocked=("cv2",),
    )
    assert seen["warp_is_nan"] and seen["flicker"] > 0 and 0 < seen["ssim"] < 1
    reason = seen["summary"].splitlines()[-1]  # after the table (a reference was given, so no line about one)
    assert "OpenCV" in seen["summary"] and _is_one_sentence_naming_a_fix(reason), seen["summary"]


def test_openexr_is_a_plain_dependency_imported_when_an_exr_map_is_read(tmp_path):
    """OpenEXR is required (pyproject.toml, requirements.txt), not optional: imported plainly, and only to read .exr."""
    exr = tmp_path / "map.exr"
    seen = _run(
        "import numpy as np, OpenEXR\n"
        "OpenEXR.File({'type': OpenEXR.scanlineimage}, {'RGB': np.ones((2, 4, 3), np.float32)})"
        f".write({str(exr)!r})\n"
        "for name in [n for n in sys.modules if n == 'OpenEXR' or n.startswith('OpenEXR.')]:\n"
        "    del sys.modules[name]\n"
        "from relightvid_core.conditioning import read_env_map\n"
        "from relightvid_core.optional import INSTALL_HINTS\n"
        "before = 'OpenEXR' in sys.modules\n"
        f"shape = list(read_env_map({str(exr)!r}).shape)\n"
        "print(json.dumps({'before': before, 'after': 'OpenEXR' in sys.modules, 'shape': shape, "
        "'optional': 'OpenEXR' in INSTALL_HINTS}))"
    )
    assert seen == {"before": False, "after": True, "shape": [2, 4, 3], "optional": False}
