"""Every node is registered the way ComfyUI expects and documents itself (STYLE.md, node layer)."""

from __future__ import annotations

import inspect

import pytest

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def _inputs(node_class) -> dict:
    types = node_class.INPUT_TYPES()
    return {**types.get("required", {}), **types.get("optional", {})}


def test_registration_ids_classes_and_display_names(pack):
    assert pack.nodes, "no nodes registered"
    assert set(pack.nodes) == set(pack.module.NODE_DISPLAY_NAME_MAPPINGS)
    for node_id, node_class in pack.nodes.items():
        assert node_id.startswith("RelightVid") and node_class.__name__ == node_id


@pytest.mark.parametrize("attribute", ["DESCRIPTION", "CATEGORY", "FUNCTION", "RETURN_TYPES", "OUTPUT_TOOLTIPS"])
def test_registration_every_node_declares(pack, attribute):
    for node_id, node_class in pack.nodes.items():
        assert getattr(node_class, attribute, None), f"{node_id} lacks {attribute}"


def test_registration_categories_and_tooltips(pack):
    for node_id, node_class in pack.nodes.items():
        assert node_class.CATEGORY.startswith("RelightVid/"), node_id
        assert len(node_class.OUTPUT_TOOLTIPS) == len(node_class.RETURN_TYPES), node_id
        assert len(node_class.RETURN_NAMES) == len(node_class.RETURN_TYPES), node_id
        for name, (kind, options) in _inputs(node_class).items():
            assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
            if isinstance(kind, list):
                assert options.get("default", kind[0] if kind else None) in kind or not kind, f"{node_id}.{name}"


def test_registration_functions_take_every_input_explicitly(pack):
    for node_id, node_class in pack.nodes.items():
        parameters = inspect.signature(getattr(node_class, node_class.FUNCTION)).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), f"{node_id} takes **kwargs"
        types = node_class.INPUT_TYPES()
        assert set(parameters) - {"self"} == set(_inputs(node_class)) | set(types.get("hidden", {})), node_id
        for name in [*types.get("optional", {}), *types.get("hidden", {})]:
            assert parameters[name].default is None, f"optional or hidden {node_id}.{name} needs a default"


def test_registration_validate_inputs_names_one_input_and_checks_the_ranges_comfyui_skips(pack):
    # ComfyUI files a VALIDATE_INPUTS result under every input it names, so it names one: a widget, or the
    # hidden node id of the nodes that read their widgets from the queued prompt. ComfyUI skips its own
    # min/max/combo checks for a named widget, so the method must do them itself.
    node_id_input = pack.module.nodes.checks.NODE_ID
    for node_id, node_class in pack.nodes.items():
        if not hasattr(node_class, "VALIDATE_INPUTS"):
            continue
        parameters = inspect.signature(node_class.VALIDATE_INPUTS).parameters
        assert len(parameters) == 1, node_id
        if list(parameters) == [node_id_input]:
            assert node_class.INPUT_TYPES()["hidden"] == {node_id_input: "UNIQUE_ID"}, node_id
            continue
        defaults = {name: _inputs(node_class)[name][1].get("default") for name in parameters}
        for name in parameters:
            kind, options = _inputs(node_class)[name]
            assert kind in ("STRING", "INT") or isinstance(kind, list), f"{node_id}.{name}"
            if kind == "INT":
                for value in (options["min"] - 1, options["max"] + 1):
                    message = node_class.VALIDATE_INPUTS(**{**defaults, name: value})
                    assert isinstance(message, str) and message.startswith(name), f"{node_id}.{name}={value}"


def test_registration_model_folder_has_extensions(pack):
    import folder_paths

    paths, extensions = folder_paths.folder_names_and_paths["relightvid"]
    assert paths[0].endswith("relightvid") and ".safetensors" in extensions and ".pth" in extensions


def test_registration_extends_an_existing_folder_entry(pack):
    import folder_paths

    host = pack.module.nodes.host
    folder_paths.folder_names_and_paths["relightvid"][0].insert(0, "/from/extra_model_paths")
    try:
        host.register_model_folder()
        assert folder_paths.folder_names_and_paths["relightvid"][0][0] == "/from/extra_model_paths"
    finally:
        folder_paths.folder_names_and_paths["relightvid"][0].remove("/from/extra_model_paths")
