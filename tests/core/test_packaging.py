"""Packaging facts the Registry and users rely on: no OpenCV wheel forced on an environment, one OpenCV
flavour in the extras, the project's addresses stated once."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPENCV = re.compile(r"^\s*opencv[-_]", re.IGNORECASE)


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _requirement_lines() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_packaging_no_opencv_in_the_required_dependencies():
    """Two OpenCV wheels in one environment break cv2 for every package there: we require none."""
    project = _project()["project"]
    assert not [d for d in project["dependencies"] if OPENCV.match(d)]
    assert not [line for line in _requirement_lines() if OPENCV.match(line)]


def test_packaging_requirements_match_the_dependencies_except_torch():
    names = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in _project()["project"]["dependencies"]}
    assert {re.split(r"[<>=!~\[ ]", line)[0].lower() for line in _requirement_lines()} == names - {"torch"}


def test_packaging_extras_offer_one_opencv_flavour_and_scikit_image_for_tests():
    extras = _project()["project"]["optional-dependencies"]
    assert [d for d in extras["cv"] if OPENCV.match(d)] == extras["cv"] and len(extras["cv"]) == 1
    assert "relightvid[cv]" in extras["test"]
    assert any(d.startswith("scikit-image") for d in extras["test"])


def test_packaging_registry_fields_and_one_set_of_addresses():
    project = _project()
    repository = project["project"]["urls"]["Repository"]
    comfy = project["tool"]["comfy"]
    owner_and_name = repository.removeprefix("https://github.com/")
    assert comfy["Icon"] == f"https://raw.githubusercontent.com/{owner_and_name}/main/docs/icon.png"
    assert (REPO / "docs" / "icon.png").is_file()
    assert comfy["PublisherId"] == owner_and_name.split("/")[0]
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])
    assert project["project"]["urls"]["Issues"] == f"{repository}/issues"
