"""Static checks of the example workflows: node types, widget counts, links, and UI ↔ API agreement.

Core node facts below were read off ComfyUI a125cd84's ``/object_info`` with frontend 1.27.10: the widgets
each node saves in ``widgets_values`` (upload widgets add a value) and its output types.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from _support.comfy_fakes import queue_time_filings

WORKFLOWS = Path(__file__).resolve().parents[2] / "example_workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UI_ONLY_WIDGETS = {"upload", "control_after_generate"}
FILE_INPUTS = {"base_checkpoint", "iclight_fbc", "temporal_weights", "env_map", "sequence"}
# The model files the templates pick, and the folder under models/ each goes in.
MODEL_FILES = {
    "realisticVisionV51_v51VAE.safetensors": "checkpoints",
    "iclight_sd15_fbc.safetensors": "relightvid",
    "relvid_mm_sd15_fbc.pth": "relightvid",
    "control_v11p_sd15_canny_fp16.safetensors": "controlnet",
}
FRONTEND_TEXTAREA_PX = 10  # frontend 1.27.10's default Comfy.TextareaWidget.FontSize

# class_type -> (widget names in widgets_values order, output types)
CORE_NODES = {
    "CheckpointLoaderSimple": (["ckpt_name"], ["MODEL", "CLIP", "VAE"]),
    "CLIPTextEncode": (["text"], ["CONDITIONING"]),
    "VAEDecode": ([], ["IMAGE"]),
    "LoadVideo": (["file", "upload"], ["VIDEO"]),
    "GetVideoComponents": ([], ["IMAGE", "AUDIO", "FLOAT"]),
    "ImageToMask": (["channel"], ["MASK"]),
    "LoadImage": (["image", "upload"], ["IMAGE", "MASK"]),
    "CreateVideo": (["fps"], ["VIDEO"]),
    "SaveVideo": (["filename_prefix", "format", "codec"], []),
    "PreviewImage": ([], []),
    "Note": (["text"], []),
    # the templates sampled by core sampler nodes
    "KSampler": (
        ["seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"],
        ["LATENT"],
    ),
    "DualCFGGuider": (["cfg_conds", "cfg_cond2_negative", "style"], ["GUIDER"]),
    "RandomNoise": (["noise_seed", "control_after_generate"], ["NOISE"]),
    "SamplerCustomAdvanced": ([], ["LATENT", "LATENT"]),
    "ControlNetLoader": (["control_net_name"], ["CONTROL_NET"]),
    "ControlNetApplyAdvanced": (["strength", "start_percent", "end_percent"], ["CONDITIONING", "CONDITIONING"]),
    "Canny": (["low_threshold", "high_threshold"], ["IMAGE"]),
}
CORE_SOCKETS = {  # class_type -> non-widget input sockets and their types
    "CLIPTextEncode": {"clip": "CLIP"},
    "VAEDecode": {"samples": "LATENT", "vae": "VAE"},
    "GetVideoComponents": {"video": "VIDEO"},
    "ImageToMask": {"image": "IMAGE"},
    "CreateVideo": {"images": "IMAGE", "audio": "AUDIO"},
    "SaveVideo": {"video": "VIDEO"},
    "PreviewImage": {"images": "IMAGE"},
    "KSampler": {"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING", "latent_image": "LATENT"},
    "DualCFGGuider": {"model": "MODEL", "cond1": "CONDITIONING", "cond2": "CONDITIONING", "negative": "CONDITIONING"},
    "SamplerCustomAdvanced": {
        "noise": "NOISE",
        "guider": "GUIDER",
        "sampler": "SAMPLER",
        "sigmas": "SIGMAS",
        "latent_image": "LATENT",
    },
    "ControlNetApplyAdvanced": {
        "positive": "CONDITIONING",
        "negative": "CONDITIONING",
        "control_net": "CONTROL_NET",
        "image": "IMAGE",
        "vae": "VAE",
    },
    "Canny": {"image": "IMAGE"},
}


def _names_file_inputs_only(filing: str, filed_under: str) -> bool:
    """True when every sentence of a queue-time ``filing`` begins with a file input's name and its value."""
    sentences = re.split(r"(?<=\.) (?=[a-z_]+ ')", filing.removeprefix(f"{filed_under} - "))
    return all(re.match(r"([a-z_]+) '", sentence) and sentence.split(" ")[0] in FILE_INPUTS for sentence in sentences)


def _kind(spec) -> str:
    kind = spec[0]
    return "COMBO" if isinstance(kind, list) else kind


def pack_widgets(node_class) -> list[str]:
    """Widget names in the order the frontend saves them (a seed adds its control_after_generate value)."""
    types = node_class.INPUT_TYPES()
    names = []
    for name, spec in {**types.get("required", {}), **types.get("optional", {})}.items():
        if _kind(spec) in WIDGET_TYPES and not spec[1].get("forceInput"):
            names.append(name)
            if spec[1].get("control_after_generate"):
                names.append("control_after_generate")
    return names


def node_facts(pack, class_type: str) -> tuple[list[str], list[str], dict[str, str]]:
    """(widgets, output types, socket input types) of a core or pack node."""
    if class_type in pack.nodes:
        node_class = pack.nodes[class_type]
        types = node_class.INPUT_TYPES()
        sockets = {name: _kind(spec) for name, spec in {**types["required"], **types.get("optional", {})}.items()}
        return pack_widgets(node_class), list(node_class.RETURN_TYPES), sockets
    widgets, outputs = CORE_NODES[class_type]
    return widgets, outputs, {**{w: "WIDGET" for w in widgets}, **CORE_SOCKETS.get(class_type, {})}


def ui_to_api(pack, ui: dict) -> dict:
    """What the frontend's graphToPrompt gives for a UI graph without groups, reroutes or muted nodes."""
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        if node["type"] == "Note":
            continue
        widgets, _outputs, _sockets = node_facts(pack, node["type"])
        values = dict(zip(widgets, node.get("widgets_values") or []))
        inputs = {name: value for name, value in values.items() if name not in UI_ONLY_WIDGETS}
        for entry in node["inputs"]:
            if entry.get("link") is not None:
                link = links[entry["link"]]
                inputs[entry["name"]] = [str(link[1]), link[2]]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api


def _specs():
    """workflows/specs.py (a script folder, not a package), imported from its file."""
    spec = importlib.util.spec_from_file_location(
        "relightvid_workflow_specs", WORKFLOWS.parent / "workflows" / "specs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_workflows_exist_with_api_twins():
    assert len(UI_FILES) >= 5
    for path in UI_FILES:
        assert (WORKFLOWS / "api" / path.name).is_file(), f"{path.name} has no API twin"


def test_the_templates_are_the_specs_written_out():
    # python workflows/specs.py writes the API files; build_workflows.py the UI files with specs' Notes.
    specs = _specs()
    assert [path.stem for path in UI_FILES] == sorted(specs.WORKFLOWS)
    for name, template in specs.WORKFLOWS.items():
        api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
        assert api == template.build(), f"{name}: run python workflows/specs.py"
        ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
        (note,) = [node["widgets_values"][0] for node in ui["nodes"] if node["type"] == "Note"]
        assert note == specs.note_text(name), f"{name}: rebuild it with tests/integration/build_workflows.py"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_templates_speak_of_one_sampling_path(path):
    # One MODEL sampled by ComfyUI: no template, title or Note speaks of a "native" path beside another.
    ui = json.loads(path.read_text())
    texts = [path.stem, *(node.get("title", "") for node in ui["nodes"])]
    texts += [node["widgets_values"][0] for node in ui["nodes"] if node["type"] == "Note"]
    assert not [text for text in texts if re.search(r"native|which path", text, re.IGNORECASE)]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_nodes_are_known_and_widgets_match(pack, path):
    ui = json.loads(path.read_text())
    assert ui["version"] == 0.4 and {"nodes", "links", "last_node_id", "last_link_id"} <= set(ui)
    assert ui["last_node_id"] >= max(node["id"] for node in ui["nodes"])
    assert ui["last_link_id"] >= max(link[0] for link in ui["links"])
    assert any(node["type"] == "Note" for node in ui["nodes"]), "every workflow carries a Note"
    for node in ui["nodes"]:
        assert node["type"] in pack.nodes or node["type"] in CORE_NODES, f"unknown node type {node['type']}"
        widgets, _outputs, _sockets = node_facts(pack, node["type"])
        assert len(node.get("widgets_values") or []) == len(widgets), f"node {node['id']} {node['type']}"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_links_are_consistent(pack, path):
    ui = json.loads(path.read_text())
    nodes = {node["id"]: node for node in ui["nodes"]}
    for link_id, source, slot, target, target_slot, kind in ui["links"]:
        _widgets, outputs, _ = node_facts(pack, nodes[source]["type"])
        assert outputs[slot] == kind, (
            f"link {link_id}: {nodes[source]['type']} output {slot} is {outputs[slot]}, not {kind}"
        )
        assert link_id in nodes[source]["outputs"][slot]["links"]
        entry = nodes[target]["inputs"][target_slot]
        assert entry["link"] == link_id
        _w, _o, sockets = node_facts(pack, nodes[target]["type"])
        assert sockets[entry["name"]] in (kind, "WIDGET") or kind in ("INT", "FLOAT"), (
            f"link {link_id} into {entry['name']}"
        )
    for node in ui["nodes"]:  # every required socket of ours is connected
        if node["type"] in pack.nodes:
            required = pack.nodes[node["type"]].INPUT_TYPES()["required"]
            linked = {entry["name"] for entry in node["inputs"] if entry.get("link") is not None}
            missing = [n for n, spec in required.items() if _kind(spec) not in WIDGET_TYPES and n not in linked]
            assert not missing, f"node {node['id']} {node['type']} leaves {missing} unconnected"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_api_twin_matches_the_ui_graph(pack, path):
    ui = json.loads(path.read_text())
    api = json.loads((WORKFLOWS / "api" / path.name).read_text())
    expected = {node_id: {"class_type": node["class_type"], "inputs": node["inputs"]} for node_id, node in api.items()}
    assert ui_to_api(pack, ui) == expected


@pytest.mark.parametrize("path", sorted((WORKFLOWS / "api").glob("*.json")), ids=lambda p: p.stem)
def test_workflow_api_inputs_fit_the_nodes(pack, path):
    api = json.loads(path.read_text())
    assert any(node["class_type"] == "SaveVideo" for node in api.values()), "an output node is needed"
    for node_id, node in api.items():
        if node["class_type"] not in pack.nodes:
            continue
        types = pack.nodes[node["class_type"]].INPUT_TYPES()
        specs = {**types["required"], **types.get("optional", {})}
        assert set(types["required"]) <= set(node["inputs"]) <= set(specs), node_id
        for name, value in node["inputs"].items():
            choices = specs[name][0]
            listed = isinstance(choices, list) and choices and not isinstance(value, list) and "file" not in name
            if listed and name not in ("base_checkpoint", "iclight_fbc", "temporal_weights", "env_map"):
                assert value in choices, f"{node_id}.{name} = {value!r}"
        # Queued as it is, nothing is refused but the model and input files, which the tests do not have (a
        # loader with two file inputs files them under its hidden id, each sentence naming its file input).
        filings = queue_time_filings(pack.module, pack.nodes[node["class_type"]], node["inputs"])
        about_files = [
            filed for filed in filings if filed[0] in FILE_INPUTS or _names_file_inputs_only(filed[1], filed[0])
        ]
        assert about_files == filings, (node_id, filings)


@pytest.mark.parametrize("path", sorted((WORKFLOWS / "api").glob("*.json")), ids=lambda p: p.stem)
def test_every_node_feeds_every_output(path):
    """ComfyUI runs the outputs whose nodes pass validation and drops the rest: an output beside the model
    path (a preview) would run, and the job report success, when a model file is missing."""
    api = json.loads(path.read_text())
    outputs = [node_id for node_id, node in api.items() if node["class_type"] in ("SaveVideo", "PreviewImage")]
    for output in outputs:
        ancestors, todo = set(), [output]
        while todo:
            for value in api[todo.pop()]["inputs"].values():
                if isinstance(value, list) and value[0] not in ancestors:
                    ancestors.add(value[0])
                    todo.append(value[0])
        assert ancestors | {output} == set(api), f"{path.stem}: {sorted(set(api) - ancestors - {output})} skip {output}"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_every_template_has_a_jpeg_thumbnail(path):
    # Frontend 1.27 asks for <name>.jpg beside each custom-node template (workflows/make_thumbnails.py).
    data = path.with_suffix(".jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff", f"{path.stem}.jpg is not a JPEG"


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_every_template_has_groups_and_opens_on_its_result(path):
    # The whole check of the opening view, in the real frontend on a 1280x800 page, is in
    # tests/integration/test_frontend.py; these are the facts the saved file alone shows.
    ui = json.loads(path.read_text())
    groups = {group["title"]: group["bounding"] for group in ui["groups"]}
    assert any("Models" in t for t in groups) and any("Lighting" in t for t in groups), list(groups)
    titles = sorted(groups)
    assert not [(a, b) for i, a in enumerate(titles) for b in titles[i + 1 :] if _overlap(groups[a], groups[b])]
    # The frontend draws the Note's text at 10 px (its default textarea font) times the view's scale.
    assert ui["extra"]["ds"]["scale"] * FRONTEND_TEXTAREA_PX >= 12, "the Note must read at 12 px or more"
    note = next(node for node in ui["nodes"] if node["type"] == "Note")
    assert "Expected time" in note["widgets_values"][0] and "GPU: not measured yet" in note["widgets_values"][0]
    # The opening view's left edge (graph units): the Note and the output group right of it, the graph left of it.
    view_left = -ui["extra"]["ds"]["offset"][0]
    output = groups["6. Decode and save"]
    assert view_left <= note["pos"][0] < output[0]
    assert all(bounds[0] + bounds[2] < view_left for title, bounds in groups.items() if title != "6. Decode and save")


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_every_model_file_a_template_names_carries_its_download(pack, path):
    ui = json.loads(path.read_text())
    files_module = sys.modules[pack.module.__name__ + ".nodes.loading.files"]
    sources = {source.name: source for source in files_module.MODEL_SOURCES}
    named = 0
    for node in ui["nodes"]:
        files = [value for value in node.get("widgets_values") or [] if isinstance(value, str) and value in MODEL_FILES]
        models = node.get("properties", {}).get("models", [])
        assert [entry["name"] for entry in models] == files, (node["id"], node["type"], models)
        for entry in models:
            named += 1
            assert set(entry) == {"name", "url", "directory"}, entry
            assert entry["url"].startswith("https://huggingface.co/") and entry["url"].endswith("/" + entry["name"])
            assert entry["directory"] == MODEL_FILES[entry["name"]], entry
            if entry["name"] in sources:  # the pack's own messages name the same source
                assert (entry["url"], entry["directory"]) == (sources[entry["name"]].url, sources[entry["name"]].folder)
    assert named >= 3, "the checkpoint, IC-Light and temporal files at least"


def test_only_the_first_template_run_claims_the_model_loading_time():
    specs = _specs()
    assert sorted(specs.RUN_ORDER) == sorted(specs.WORKFLOWS)
    loads = [name for name in specs.WORKFLOWS if specs.FIRST_RUN_CACHE in specs.note_text(name)]
    assert loads == [specs.RUN_ORDER[0]]
