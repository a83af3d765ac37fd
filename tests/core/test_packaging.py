"""Packaging facts the Registry and users rely on: no OpenCV wheel forced on an environment, one OpenCV
flavour in the extras, the project's addresses stated once, a Registry package without development files,
and CI that runs the README's tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

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
    assert "relightvid[cv,ray]" in extras["test"]
    assert any(d.startswith("scikit-image") for d in extras["test"])


def test_packaging_ray_is_an_extra_pinned_to_the_tested_minor_release():
    project = _project()["project"]
    assert not any(d.startswith("ray") for d in project["dependencies"])
    assert project["optional-dependencies"]["ray"] == ["ray[data]>=2.60,<2.61"]


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


# --- the project's address, written once -----------------------------------------------------------------

# Other projects' repositories the README may link to: the official RelightVid code (its sample assets).
FOREIGN_REPOSITORIES = ("github.com/Aleafy/RelightVid",)
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".json", ".yml", ".yaml", ".cfg", ".ini", ".sh", ""}
SKIPPED_FOLDERS = {".git", ".venv", "__pycache__", ".pytest_cache", "build", "dist"}


def _repository_path() -> str:
    """``owner/name`` of the Repository URL in pyproject.toml."""
    return _project()["project"]["urls"]["Repository"].removeprefix("https://github.com/")


def _text_files() -> list[Path]:
    """The repository's text files, outside environments, caches and build output."""
    files = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS and not name.endswith(".egg-info")]
        files += [Path(folder, name) for name in names if Path(name).suffix in TEXT_SUFFIXES]
    return files


def test_packaging_the_repository_address_is_written_only_in_pyproject():
    owner_and_name = _repository_path()
    spelled_out = [
        str(path.relative_to(REPO))
        for path in _text_files()
        if path.name != "pyproject.toml" and owner_and_name.lower() in path.read_text(errors="replace").lower()
    ]
    assert spelled_out == []


def test_packaging_readme_links_no_github_repository_of_its_own():
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"(?:https?://)?(?:www\.)?github\.com/[\w.-]+(?:/[\w.-]+)?", readme)
    assert links, "the README links the official code's assets"
    foreign = [link for link in links if not link.removeprefix("https://").startswith(FOREIGN_REPOSITORIES)]
    assert foreign == []
    assert "raw.githubusercontent.com" not in readme


# --- what the Registry package holds (.comfyignore) --------------------------------------------------------

# What the pack needs once installed: imported, read by ComfyUI's Templates browser, or installed from.
RUNTIME = ("__init__.py", "nodes", "relightvid_core", "example_workflows", "requirements.txt", "pyproject.toml",
           "LICENSE", "README.md")  # fmt: skip
DEVELOPMENT = ("tests/core/test_packaging.py", "bench/bench_gpu.py", ".ci/run", ".github/workflows/tests.yml",
               "workflows/specs.py", "workflows/make_thumbnails.py")  # fmt: skip


def _comfyignored(paths: list[str], tmp_path: Path) -> set[str]:
    """The ``paths`` that .comfyignore excludes, as git's own matcher reads the same gitignore syntax."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed; it matches .comfyignore's gitignore patterns here")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    shutil.copy(REPO / ".comfyignore", tmp_path / ".gitignore")
    for path in paths:  # real files, so that folder patterns ("tests/") match as they do in a checkout
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    result = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: nothing ignored
    return set(result.stdout.split())


def test_packaging_comfyignore_keeps_development_files_out(tmp_path):
    assert _comfyignored(list(DEVELOPMENT), tmp_path) == set(DEVELOPMENT)


def test_packaging_comfyignore_keeps_every_file_the_pack_needs(tmp_path):
    needed = [
        str(path.relative_to(REPO))
        for top in RUNTIME
        for path in ([REPO / top] if (REPO / top).is_file() else (REPO / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    needed += ["workflows/queue_workflow.py", "docs/icon.png"]  # the README's queueing script; the icon
    assert len(needed) > 50
    assert _comfyignored(needed, tmp_path) == set()


# --- continuous integration ------------------------------------------------------------------------------


def test_packaging_ci_runs_the_readme_tests_on_pull_requests_and_main():
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with huggingface_hub")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "tests.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the bare key `on` as true
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    setup = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "pyproject.toml"}
    assert [step["run"] for step in job["steps"] if "run" in step] == [".ci/run"]
