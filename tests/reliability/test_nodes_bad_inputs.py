"""Bad inputs entering through the nodes: each is refused in one sentence naming the input, without
traceback-like text, leaving the input tensors and the model/input folders as they were.

Queue-time cases validate a node as ComfyUI does when a prompt is queued (``queue_time_filings``): each
problem must be filed once, in one sentence naming the input (or by ComfyUI's own range/list check under
it); node-entry cases call the node function as ComfyUI runs it (with values ComfyUI's own min/max check lets
through, NaN above all, or that a direct caller could pass).
"""

from __future__ import annotations

import inspect
import math
import os
import re
from pathlib import Path

import pytest
import torch
from _support.comfy_fakes import (
    BASE_FILE,
    ENV_MAP_FILE,
    FC_FILE,
    ICLIGHT_FILE,
    MOTION_FILE,
    FakeModel,
    clip_frames,
    disc_masks,
    queue_time_filings,
)
from safetensors.torch import save_file

# Quick settings on top of each node's declared defaults.
SAMPLER_OVERRIDES = {"seed": 7, "steps": 1, "scheduler": "ddim"}
FOREGROUND_OVERRIDES = {"width": 64, "height": 64}

# Base checkpoints of other families, with only the keys (and shapes) that identify them.
SDXL_FILE, SD2_FILE, SD3_FILE, FLUX_FILE = "sdxl_base.safetensors", "sd21.safetensors", "sd3.safetensors", "flux.sft"
LDM = "model.diffusion_model."
FAMILY_KEYS = {
    SDXL_FILE: {
        LDM + "input_blocks.0.0.weight": (320, 4, 3, 3),
        LDM + "label_emb.0.0.weight": (1280, 2816),
        LDM + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (8, 2048),
    },
    SD2_FILE: {
        LDM + "input_blocks.0.0.weight": (320, 4, 3, 3),
        LDM + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (8, 1024),
    },
    SD3_FILE: {LDM + "joint_blocks.0.x_block.attn.qkv.weight": (8, 8), LDM + "x_embedder.proj.weight": (8, 16, 2, 2)},
    FLUX_FILE: {"double_blocks.0.img_attn.qkv.weight": (8, 8), "img_in.weight": (8, 64)},
}
TRACEBACK_MARKS = ("Traceback", 'File "', "line ", "Error:", "\n")


def assert_one_sentence(message: object, input_name: str) -> None:
    """One sentence that names ``input_name``, with nothing of a traceback in it."""
    assert isinstance(message, str), message
    assert input_name in message, message
    assert not any(mark in message for mark in TRACEBACK_MARKS), message
    assert message.rstrip().endswith("."), message
    assert not re.search(r"\.\s+[A-Z]", message), f"more than one sentence: {message}"


def widget_defaults(node_class, **overrides) -> dict:
    """Every widget's declared default (a combo's first choice when it has none), then ``overrides``."""
    declared = node_class.INPUT_TYPES()
    defaults = {}
    for name, spec in {**declared["required"], **declared.get("optional", {})}.items():
        options = spec[1] if len(spec) > 1 else {}
        if "default" in options:
            defaults[name] = options["default"]
        elif isinstance(spec[0], list) and spec[0]:
            defaults[name] = spec[0][0]
    return {**defaults, **overrides}


def tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its size: a failing node must not add, remove or change one."""
    return {str(path.relative_to(root)): path.stat().st_size for path in root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def other_family_files(pack):
    folder = pack.base / "models" / "checkpoints"
    for name, shapes in FAMILY_KEYS.items():
        save_file({key: torch.zeros(shape, dtype=torch.float16) for key, shape in shapes.items()}, str(folder / name))
    yield
    for name in FAMILY_KEYS:
        os.remove(folder / name)


@pytest.fixture(scope="module")
def settings(pack) -> dict:
    """node id → the widget values a test starts from."""
    return {
        "RelightVidSampler": widget_defaults(pack.nodes["RelightVidSampler"], **SAMPLER_OVERRIDES),
        "RelightVidForeground": widget_defaults(pack.nodes["RelightVidForeground"], **FOREGROUND_OVERRIDES),
        "RelightVidLightPreset": widget_defaults(pack.nodes["RelightVidLightPreset"]),
        "RelightVidHDRMap": widget_defaults(pack.nodes["RelightVidHDRMap"], env_map=ENV_MAP_FILE),
    }


@pytest.fixture
def graph(pack, vae, clip, settings):
    foreground, *_ = pack.node("RelightVidForeground").prepare(
        vae, images=clip_frames(2, 64, 64), mask=disc_masks(2, 64, 64), **settings["RelightVidForeground"]
    )
    background, _ = pack.node("RelightVidLightPreset").render(foreground, **settings["RelightVidLightPreset"])
    (text,) = pack.node("RelightVidTextConditioning").combine(clip.encode("light from the left"), clip=clip)
    return {"foreground": foreground, "background": background, "text": text}


def refused_at_queue(pack, node_id: str, input_name: str, **values) -> None:
    """Queued with the node's defaults and ``values``, exactly one problem is filed: ours, one sentence naming
    ``input_name`` (under that input or the hidden node-id input), or ComfyUI's own check under
    ``input_name``; nothing is written."""
    before = tree(pack.base)
    node_class = pack.nodes[node_id]
    filings = queue_time_filings(pack.module, node_class, widget_defaults(node_class, **values))
    assert len(filings) == 1, filings
    ((filed_under, message),) = filings
    ours = message.startswith(f"{filed_under} - ")
    assert filed_under in (input_name, pack.module.nodes.checks.NODE_ID) if ours else filed_under == input_name, filings
    if ours:
        assert_one_sentence(message.removeprefix(f"{filed_under} - "), input_name)
    assert tree(pack.base) == before


def refused_at_entry(pack, call, input_name: str, tensors: list[torch.Tensor]) -> None:
    """``call()`` raises one of the pack's errors in one sentence naming ``input_name``; the tensors it was
    given and the folders are unchanged."""
    copies = [tensor.clone() for tensor in tensors]
    before = tree(pack.base)
    with pytest.raises(pack.core.errors.RelightVidError) as caught:
        call()
    assert_one_sentence(str(caught.value), input_name)
    assert all(torch.equal(tensor, copy) for tensor, copy in zip(tensors, copies))
    assert tree(pack.base) == before


# --- queue time: VALIDATE_INPUTS ---------------------------------------------------------------------


SAMPLER_QUEUE_CASES = [
    ("window overlap equals length", {"window_length": 16, "window_overlap": 16}, "window_overlap"),
    ("window overlap beyond length", {"window_length": 8, "window_overlap": 12}, "window_overlap"),
    ("window length 0", {"window_length": 0, "window_overlap": 0}, "window_length"),
    ("window length past the position encoding", {"window_length": 33, "window_overlap": 4}, "window_length"),
    ("negative overlap", {"window_overlap": -1}, "window_overlap"),
    ("factors not numbers", {"iie_factors": "bright, dark"}, "iie_factors"),
    ("no factors", {"iie_factors": " , "}, "iie_factors"),
    ("zero factor", {"iie_factors": "0, 1.0"}, "iie_factors"),
    ("infinite factor", {"iie_factors": "inf"}, "iie_factors"),
    ("NaN factor", {"iie_factors": "1.0 nan"}, "iie_factors"),
    ("too many factors", {"iie_factors": ", ".join(["1.0"] * 17)}, "iie_factors"),
    ("NaN text guidance", {"text_scale": math.nan}, "text_scale"),
    ("infinite image guidance", {"image_scale": math.inf}, "image_scale"),
    ("seed past 64 bits", {"seed": 2**64}, "seed"),
]


def _cases(cases: list[tuple]) -> dict:
    """parametrize arguments from (id, values..., input name) rows."""
    return {"argvalues": [case[1:] for case in cases], "ids": [case[0] for case in cases]}


@pytest.mark.parametrize("values, input_name", **_cases(SAMPLER_QUEUE_CASES))
def test_sampler_refuses_at_queue_time(pack, values, input_name):
    refused_at_queue(pack, "RelightVidSampler", input_name, **values)


def test_sampler_queue_check_passes_linked_inputs(pack):
    # A widget fed by another node has no value yet: nothing to check before it runs.
    node_class = pack.nodes["RelightVidSampler"]
    linked = {name: ["3", 0] for name in ("iie_factors", "window_length", "window_overlap", "text_scale")}
    assert queue_time_filings(pack.module, node_class, widget_defaults(node_class, **linked)) == []


def test_two_problems_of_a_node_are_filed_once_each_cause_first(pack):
    # ComfyUI's own range check and ours both run; ours reports its first problem only, once.
    node_class = pack.nodes["RelightVidSampler"]
    values = widget_defaults(node_class, steps=0, iie_factors="bright", window_length=8, window_overlap=8)
    filings = queue_time_filings(pack.module, node_class, values)
    assert [name for name, _message in filings] == ["steps", pack.module.nodes.checks.NODE_ID], filings
    assert "iie_factors" in filings[1][1]


def test_queue_time_checks_pass_when_no_prompt_is_being_queued(pack):
    # Validation outside POST /prompt (another pack calling it): the node checks at entry instead.
    for node_class in pack.nodes.values():
        parameters = inspect.signature(node_class.VALIDATE_INPUTS).parameters if hasattr(node_class, "VALIDATE_INPUTS") else {}
        if list(parameters) == [pack.module.nodes.checks.NODE_ID]:
            assert node_class.VALIDATE_INPUTS("1") is True, node_class.__name__


QUEUED_NUMBER_CASES = [
    ("foreground feather NaN", "RelightVidForeground", {"feather": math.nan}, "feather"),
    ("light intensity NaN", "RelightVidLightPreset", {"intensity": math.nan}, "intensity"),
    ("light softness infinite", "RelightVidLightPreset", {"softness": math.inf}, "softness"),
    ("HDR yaw NaN", "RelightVidHDRMap", {"yaw": math.nan, "env_map": ENV_MAP_FILE}, "yaw"),
    ("HDR exposure NaN", "RelightVidHDRMap", {"exposure": math.nan, "env_map": ENV_MAP_FILE}, "exposure"),
    ("HDR yaw speed infinite", "RelightVidHDRMap", {"yaw_speed": -math.inf, "env_map": ENV_MAP_FILE}, "yaw_speed"),
    ("schedule denoise NaN", "RelightVidSchedule", {"denoise": math.nan}, "denoise"),
    ("guider text scale NaN", "RelightVidIIEGuider", {"text_scale": math.nan}, "text_scale"),
    ("guider factors", "RelightVidIIEGuider", {"iie_factors": "0.5, x"}, "iie_factors"),
    ("windows overlap = length", "RelightVidContextWindows", {"window_length": 8, "window_overlap": 8}, "window_overlap"),
]


@pytest.mark.parametrize("node_id, values, input_name", **_cases(QUEUED_NUMBER_CASES))
def test_numbers_and_settings_are_refused_at_queue_time(pack, node_id, values, input_name):
    refused_at_queue(pack, node_id, input_name, **values)


SIZE_QUEUE_CASES = [
    ("width 100", "RelightVidForeground", {"width": 100, "height": 512}, "width"),
    ("height 100", "RelightVidForeground", {"width": 512, "height": 100}, "height"),
    ("width 0", "RelightVidForeground", {"width": 0, "height": 512}, "width"),
    ("height past the maximum", "RelightVidForeground", {"width": 512, "height": 8200}, "height"),
    ("fit width 100", "RelightVidFitFrames", {"width": 100, "height": 512}, "width"),
    ("fit height not a number", "RelightVidFitFrames", {"width": 512, "height": "tall"}, "height"),
]


@pytest.mark.parametrize("node_id, values, input_name", **_cases(SIZE_QUEUE_CASES))
def test_sizes_are_refused_at_queue_time(pack, node_id, values, input_name):
    refused_at_queue(pack, node_id, input_name, **values)


@pytest.mark.parametrize(
    "family, file_name", [("SDXL", SDXL_FILE), ("SD2", SD2_FILE), ("SD3", SD3_FILE), ("Flux", FLUX_FILE)]
)
def test_base_checkpoint_of_another_family_is_named_at_queue_time(pack, other_family_files, family, file_name):
    node_class = pack.nodes["RelightVidUNetLoader"]
    filings = queue_time_filings(pack.module, node_class, widget_defaults(node_class, base_checkpoint=file_name))
    ((filed_under, message),) = filings
    message = message.removeprefix(f"{filed_under} - ")
    assert_one_sentence(message, "base_checkpoint")
    assert family in message and "SD1.5" in message and "conv_in" not in message


def test_missing_base_checkpoint_is_named_at_queue_time(pack):
    refused_at_queue(pack, "RelightVidUNetLoader", "base_checkpoint", base_checkpoint="realvis.safetensors")


def test_missing_temporal_weights_are_named_at_queue_time(pack):
    refused_at_queue(pack, "RelightVidTemporalLoader", "temporal_weights", temporal_weights="mm_missing.pth")


@pytest.mark.parametrize("env_map", ["sky_missing.hdr", "photo.png"])
def test_bad_env_map_is_named_at_queue_time(pack, env_map):
    refused_at_queue(pack, "RelightVidHDRMap", "env_map", env_map=env_map)


def test_bad_light_colour_is_named_at_queue_time(pack):
    refused_at_queue(pack, "RelightVidLightPreset", "color", color="warm")


# --- node entry: values ComfyUI's own checks let through, or a direct caller passes ----------------------


SAMPLER_ENTRY_CASES = [
    ("NaN text guidance", {"text_scale": math.nan}, "text_scale"),
    ("infinite image guidance", {"image_scale": math.inf}, "image_scale"),
    ("negative infinite text guidance", {"text_scale": -math.inf}, "text_scale"),
    ("seed past 64 bits", {"seed": 2**64}, "seed"),
    ("negative seed", {"seed": -1}, "seed"),
    ("fractional seed", {"seed": 1.5}, "seed"),
    ("no steps", {"steps": 0}, "steps"),
    ("overlap equals length", {"window_length": 8, "window_overlap": 8}, "window_overlap"),
    ("factors not numbers", {"iie_factors": "one"}, "iie_factors"),
]


@pytest.mark.parametrize("overrides, input_name", **_cases(SAMPLER_ENTRY_CASES))
def test_sampler_refuses_at_entry(pack, base_model, graph, settings, overrides, input_name):
    foreground = graph["foreground"]

    values = {**settings["RelightVidSampler"], **overrides}

    def call():
        pack.node("RelightVidSampler").relight(base_model, **graph, **values)

    refused_at_entry(pack, call, input_name, [foreground.frames, foreground.masks, graph["text"].positive[0][0]])


HDR_ENTRY_CASES = [
    ("infinite yaw", {"yaw": math.inf}, "yaw"),
    ("NaN yaw", {"yaw": math.nan}, "yaw"),
    ("NaN yaw speed", {"yaw_speed": math.nan}, "yaw_speed"),
    ("infinite exposure", {"exposure": math.inf}, "exposure"),
    ("NaN field of view", {"fov": math.nan}, "fov"),
    ("pitch past the pole", {"pitch": 91.0}, "pitch"),
]


@pytest.mark.parametrize("overrides, input_name", **_cases(HDR_ENTRY_CASES))
def test_hdr_map_refuses_at_entry(pack, graph, settings, overrides, input_name):
    foreground = graph["foreground"]

    def call():
        pack.node("RelightVidHDRMap").render(foreground, **{**settings["RelightVidHDRMap"], **overrides})

    refused_at_entry(pack, call, input_name, [foreground.frames])


@pytest.mark.parametrize(
    "overrides, input_name", [({"intensity": math.nan}, "intensity"), ({"softness": math.inf}, "softness")]
)
def test_light_preset_refuses_at_entry(pack, graph, settings, overrides, input_name):
    foreground = graph["foreground"]

    def call():
        pack.node("RelightVidLightPreset").render(foreground, **{**settings["RelightVidLightPreset"], **overrides})

    refused_at_entry(pack, call, input_name, [foreground.frames])


@pytest.mark.parametrize(
    "overrides, input_name", [({"width": 100}, "width"), ({"feather": math.nan}, "feather"), ({"grow": 65}, "grow")]
)
def test_foreground_refuses_at_entry(pack, vae, settings, overrides, input_name):
    frames, masks = clip_frames(2, 64, 64), disc_masks(2, 64, 64)

    values = {**settings["RelightVidForeground"], **overrides}

    def call():
        pack.node("RelightVidForeground").prepare(vae, images=frames, mask=masks, **values)

    refused_at_entry(pack, call, input_name, [frames, masks])
    assert vae.calls == []  # refused before any work


@pytest.mark.parametrize("height", [100, 512.5])
def test_fit_frames_refuses_a_size_at_entry(pack, height):
    # 512.5 reaches a node only from a direct caller: ComfyUI makes an INT widget's value whole when queued.
    frames = clip_frames(2, 64, 64)
    node = pack.node("RelightVidFitFrames")
    refused_at_entry(pack, lambda: node.fit("cover", 64, height, 0, 1, 0, images=frames), "height", [frames])


@pytest.mark.parametrize("family, file_name", [("SDXL", SDXL_FILE), ("Flux", FLUX_FILE)])
def test_unet_loader_names_the_family_of_a_base_file_at_entry(pack, other_family_files, family, file_name):
    with pytest.raises(pack.core.errors.RelightVidError) as caught:
        pack.node("RelightVidUNetLoader").load(file_name, ICLIGHT_FILE, "fp32")
    assert_one_sentence(str(caught.value), "base_checkpoint")
    assert family in str(caught.value)


@pytest.mark.parametrize(
    "family, keys",
    [
        ("SDXL", {"label_emb.0.0.weight": (1280, 2816), "input_blocks.0.0.weight": (320, 4, 3, 3)}),
        ("SD2", {"input_blocks.0.0.weight": (320, 4, 3, 3), "input_blocks.1.1.attn2.to_k.weight": (8, 1024)}),
        ("SD3", {"joint_blocks.0.x_block.attn.qkv.weight": (8, 8)}),
        ("Flux", {"double_blocks.0.img_attn.qkv.weight": (8, 8)}),
    ],
)
def test_unet_loader_names_the_family_of_a_connected_model(pack, family, keys):
    model = FakeModel({key: torch.zeros(shape) for key, shape in keys.items()}, config_name=family)
    weights = {key: value.clone() for key, value in model.state_dict.items()}

    def call():
        pack.node("RelightVidUNetLoader").load("(connected MODEL)", ICLIGHT_FILE, "auto", model=model)

    refused_at_entry(pack, call, "the connected MODEL", list(weights.values()))
    with pytest.raises(pack.core.errors.RelightVidError, match=family):
        call()
    assert all(torch.equal(model.state_dict[key], value) for key, value in weights.items())


def test_unet_loader_names_a_missing_iclight_file_once(pack):
    # ComfyUI refuses a value missing from the iclight_fbc list at queue time (once, under that input);
    # a direct call names the input and the folders it looked in.
    loader = pack.node("RelightVidUNetLoader")
    refused_at_entry(pack, lambda: loader.load(BASE_FILE, "iclight_gone.safetensors", "fp32"), "iclight_fbc", [])


def test_unet_loader_refuses_the_fc_file(pack):
    with pytest.raises(pack.core.errors.RelightVidError, match="fc") as caught:
        pack.node("RelightVidUNetLoader").load(BASE_FILE, FC_FILE, "fp32")
    assert "\n" not in str(caught.value)


def test_temporal_loader_refuses_missing_weights_at_entry(pack, base_model):
    before = {key: value.clone() for key, value in list(base_model.state_dict.items())[:4]}
    loader = pack.node("RelightVidTemporalLoader")
    refused_at_entry(pack, lambda: loader.load(base_model, "gone.pth"), "temporal_weights", [])
    assert all(torch.equal(base_model.state_dict[key], value) for key, value in before.items())
    assert MOTION_FILE in pack.nodes["RelightVidTemporalLoader"].INPUT_TYPES()["required"]["temporal_weights"][0]
