"""What the README tells a first-time user, checked against the code: install steps that work today, the
schedules it quotes, every node by its display name and every template by its name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from relightvid_core.sampling import build_scheduler

README_PATH = Path(__file__).resolve().parents[2] / "README.md"
README = README_PATH.read_text()
# "with 20 steps, `ddpm` 950, 900, …, 0 and `ddim` 951, 901, …, 1": a step count and each scheduler's timesteps.
SCHEDULE_EXAMPLE = re.compile(r"with (\d+) steps, `ddpm` ([\d, …]+?) and `ddim` ([\d, …]+?)[;|]")


def _section(heading: str) -> str:
    start = README.index(f"\n{heading}\n") + len(heading) + 2
    following = re.compile(r"^#{1,3} ", re.MULTILINE).search(README, start)
    return README[start : following.start() if following else len(README)]


def _paragraphs(text: str) -> list[str]:
    return [paragraph for paragraph in re.split(r"\n\s*\n", text) if paragraph.strip()]


def test_readme_install_says_clone_and_pip_install_the_requirements():
    install = _section("### Install")
    assert "git clone" in install and "custom_nodes" in install
    assert "pip install -r ComfyUI-RelightVid/requirements.txt" in install
    # The address is read from pyproject.toml, never spelled out here (tests/core/test_packaging.py).
    assert "[project.urls]" in install and "pyproject.toml" in install


def test_readme_install_marks_registry_routes_as_not_yet_published():
    registry_routes = ("ComfyUI-Manager", "comfy node install", "Registry")
    paragraphs = [p for p in _paragraphs(_section("### Install")) if any(route in p for route in registry_routes)]
    assert paragraphs, "the Registry routes are announced"
    for paragraph in paragraphs:
        assert "first Comfy Registry release" in paragraph and "not yet published" in paragraph, paragraph


def _numbers(listed: str) -> list[int | None]:
    """ "950, 900, …, 0" → [950, 900, None, 0] (None stands for the elided middle)."""
    return [None if item.strip() == "…" else int(item) for item in listed.split(",")]


def _matches(listed: list[int | None], timesteps: list[int]) -> bool:
    if None not in listed:
        return listed == timesteps
    cut = listed.index(None)
    head, tail = listed[:cut], listed[cut + 1 :]
    return timesteps[: len(head)] == head and timesteps[len(timesteps) - len(tail) :] == tail


def test_readme_schedule_examples_are_what_the_schedulers_give():
    examples = SCHEDULE_EXAMPLE.findall(README)
    assert len(examples) >= 2, "the README gives the 20-step schedule and another step count"
    for steps, ddpm, ddim in examples:
        for name, listed in (("ddpm", ddpm), ("ddim", ddim)):
            timesteps = [int(t) for t in build_scheduler(name, int(steps)).timesteps]
            assert _matches(_numbers(listed), timesteps), (name, steps, listed, timesteps)


def _node_display_names() -> list[str]:
    """The display names nodes/__init__.py registers (read from its source: the library tests import no pack)."""
    source = (Path(__file__).resolve().parents[2] / "nodes" / "__init__.py").read_text()
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign) and statement.targets[0].id == "NODE_DISPLAY_NAME_MAPPINGS":
            return list(ast.literal_eval(statement.value).values())
    raise AssertionError("nodes/__init__.py has no NODE_DISPLAY_NAME_MAPPINGS")


def test_readme_node_table_lists_every_node_by_its_display_name():
    lines = [line for line in _section("### The nodes").splitlines() if line.startswith("| ")]
    rows = [line.split("|")[1].strip() for line in lines[2:]]  # after the header and its rule
    names = _node_display_names()
    assert sorted(rows) == sorted(names), sorted(set(rows) ^ set(names))


def test_readme_names_every_template():
    templates = sorted(path.stem for path in (README_PATH.parent / "example_workflows").glob("*.json"))
    assert templates and [name for name in templates if not re.search(rf"\b{name}\b", README)] == []
