"""The MODEL patches without ComfyUI (nodes/model_patch/): the layers they insert and the checks that refuse bad
input.

The patched U-Net itself is checked against the library's in tests/integration/test_native_model.py.
"""

from __future__ import annotations

import contextvars
import importlib
import sys
import threading
from types import SimpleNamespace

import pytest
import torch
from _support.comfy_fakes import FC_FILE, ICLIGHT_FILE, MOTION_FILE, FakeModel, queue_time_filings
from _support.tiny_weights import diffusers_to_ldm_key
from torch import nn

from relightvid_core.models.configs import FULL_FBC
from relightvid_core.weights.convert import is_motion_key
from relightvid_core.weights.load import expected_shapes

FRAMES = 4


class _Modules(SimpleNamespace):
    """The model_patch modules, each under its own name (temporal, iclight, wiring, patch)."""


@pytest.fixture(scope="module")
def patches(pack):
    prefix = pack.module.__name__ + ".nodes.model_patch."
    return _Modules(**{name: sys.modules[prefix + name] for name in ("temporal", "iclight", "wiring", "patch")})


def test_clip_group_norm_matches_library(pack, patches):
    blocks3d = importlib.import_module(pack.module.__name__ + ".relightvid_core.models.blocks3d")
    torch.manual_seed(0)
    norm = nn.GroupNorm(8, 32)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    hidden = torch.randn(2 * FRAMES, 32, 5, 6) * torch.arange(1, 2 * FRAMES + 1).view(-1, 1, 1, 1)
    replaced = patches.temporal.ClipGroupNorm(norm)
    expected = blocks3d.group_norm(norm, hidden, FRAMES, across_frames=True)
    with patches.temporal.frames_per_clip(FRAMES):
        torch.testing.assert_close(replaced(hidden), expected, atol=1e-5, rtol=0)
        assert not torch.allclose(replaced(hidden), norm(hidden), atol=1e-3), "statistics must span the clip"
    assert list(replaced.parameters()) == [], "the norm's weights keep their U-Net keys"


def test_clip_group_norm_needs_the_sampler(patches):
    replaced = patches.temporal.ClipGroupNorm(nn.GroupNorm(8, 32))
    with pytest.raises(RuntimeError, match="sampler"):
        replaced(torch.zeros(FRAMES, 32, 2, 2))


def test_clip_length_belongs_to_its_call_and_context(patches):
    """Nested calls (one MODEL's U-Net inside another's sampling) and other threads each see their own length."""
    temporal = patches.temporal
    seen = []
    with temporal.frames_per_clip(8):
        with temporal.frames_per_clip(3):
            seen.append(temporal.current_clip_frames())
        seen.append(temporal.current_clip_frames())
        other_thread = []
        thread = threading.Thread(target=lambda: other_thread.append(temporal._CLIP_FRAMES.get()))
        thread.start()
        thread.join()
    assert seen == [3, 8] and other_thread == [None]
    with pytest.raises(RuntimeError):
        temporal.current_clip_frames()


def test_the_clip_length_wrapper_sets_the_length_for_its_call_only(patches):
    def executor(x, timesteps, context, y, control, transformer_options, **kwargs):
        return patches.temporal.current_clip_frames()

    frames = patches.patch.clip_length_wrapper(executor, torch.zeros(12, 4, 2, 2), None, None, None, None, {"cond_or_uncond": [0, 1, 1]})
    assert frames == 4
    with pytest.raises(RuntimeError):
        patches.temporal.current_clip_frames()


def test_clip_length_splits_the_batch_by_conds(pack, patches):
    assert patches.temporal.clip_length(16, {"cond_or_uncond": [0, 1]}) == 8
    assert patches.temporal.clip_length(8, {}) == 8
    with pytest.raises(pack.core.InputError, match="3 conditionings"):
        patches.temporal.clip_length(16, {"cond_or_uncond": [0, 1, 1]})


def test_temporal_layer_runs_the_library_module(pack, patches):
    motion_module = importlib.import_module(pack.module.__name__ + ".relightvid_core.models.motion")
    torch.manual_seed(0)
    module = motion_module.MotionModule(32, zero_initialize=False).eval()
    hidden = torch.randn(2 * FRAMES, 32, 3, 3)
    layer = patches.temporal.TemporalLayer(module)
    with torch.no_grad(), patches.temporal.frames_per_clip(FRAMES):
        torch.testing.assert_close(layer(hidden), module(hidden, FRAMES), atol=0, rtol=0)
    assert list(layer.parameters()) == [], "the temporal weights belong to their own patcher"


def test_image_condition_with_other_frame_count_raises(pack, patches):
    iclight = patches.iclight
    conds = iclight.ImageConcatConds(original=lambda **kwargs: {}, latent_format=None)
    image = torch.zeros(FRAMES - 1, iclight.IMAGE_CHANNELS, 2, 2)
    with pytest.raises(pack.core.InputError, match=r"as many frames as the latent"):
        conds(noise=torch.zeros(FRAMES, 4, 2, 2), device="cpu", **{iclight.RELIGHTVID_IMAGE_KEY: image})


class _ShapesOnlyModel:
    """A MODEL stand-in exposing what Apply RelightVid reads first: key shapes and the config's class."""

    def __init__(self, shapes, family):
        self._shapes = shapes
        self.model = SimpleNamespace(model_config=type(family, (), {})())

    def get_model_object(self, name):
        return None

    def get_key_patches(self, prefix):
        return {key: [(torch.empty(shape, device="meta"), None)] for key, shape in self._shapes.items()}


@pytest.mark.parametrize(
    ("shapes", "family", "named"),
    [
        ({"label_emb.0.0.weight": (1280, 2816), "input_blocks.0.0.weight": (320, 4, 3, 3)}, "SDXL", "an SDXL model"),
        (
            {"input_blocks.0.0.weight": (320, 4, 3, 3), "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024)},
            "SD21",
            "an SD2",
        ),
    ],
)
def test_refuses_a_model_that_is_not_sd15(pack, patches, shapes, family, named):
    model = _ShapesOnlyModel({"diffusion_model." + key: shape for key, shape in shapes.items()}, family)
    with pytest.raises(pack.core.WeightFormatError, match=f"ComfyUI: {family}.*{named}.*SD1.5"):
        patches.iclight.base_unet_shapes(model)


def test_refuses_the_fc_file(pack, patches):
    with pytest.raises(pack.core.WeightFormatError, match="fc model .*fbc"):
        patches.iclight.iclight_patches(str(pack.base / "models/relightvid" / FC_FILE), {})


def _full_size_sd15_model() -> FakeModel:
    """A plain SD1.5 MODEL of the real shapes (meta tensors: shapes only), which passes the base checks."""
    shapes = expected_shapes({**FULL_FBC, "in_channels": 4})
    return FakeModel({diffusers_to_ldm_key(key): torch.empty(shape, device="meta")
                      for key, shape in shapes.items() if not is_motion_key(key)})  # fmt: skip


@pytest.mark.parametrize("node_id", ["RelightVidApplyModel", "RelightVidTemporalLoader"])
def test_the_model_nodes_need_comfyui(pack, patches, node_id):
    if patches.patch.comfy is not None:
        pytest.skip("ComfyUI is importable here")
    node, model = pack.node(node_id), _full_size_sd15_model()
    with pytest.raises(pack.core.InputError, match="only inside ComfyUI"):
        node.apply(model, ICLIGHT_FILE, MOTION_FILE) if node_id == "RelightVidApplyModel" else node.load(
            model, MOTION_FILE
        )


def test_preview_wrapper_shows_the_clip_and_keeps_comfyuis_callback(patches, monkeypatch):
    shown, steps, closed = [], [], []

    class Preview:
        def __init__(self, device):
            assert device == "cuda:0"  # the model's load device, where the previewer decodes

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            closed.append(True)

        def show(self, x0):
            shown.append(x0.shape)

    monkeypatch.setattr(patches.patch, "ClipPreview", Preview)
    guider = SimpleNamespace(model_patcher=SimpleNamespace(load_device="cuda:0"))

    def executor(guider_, sigmas, extra_args, callback, noise, *rest):
        for step in range(2):
            callback(step, torch.zeros(FRAMES, 4, 2, 2), noise, 2)
        return "samples"

    result = patches.patch.clip_preview_wrapper(executor, guider, None, {}, lambda *a: steps.append(a[0]), "noise", "latent")
    assert result == "samples" and steps == [0, 1] and shown == [(FRAMES, 4, 2, 2)] * 2 and closed == [True]
    assert patches.patch.clip_preview_wrapper(lambda g, s, e, cb, *r: cb, guider, None, {}, None) is None  # no callback


def test_conds_need_the_image_except_the_negative(pack, patches):
    key = patches.iclight.RELIGHTVID_IMAGE_KEY
    with_image = [{key: torch.zeros(FRAMES, 8, 2, 2)}]
    patches.wiring.check_clip_conds({"positive": with_image, "middle": with_image, "negative": [{}]}, FRAMES)
    error = pack.core.errors.InputError
    with pytest.raises(error, match="the positive conditioning carries no RelightVid image; connect it from a Relight"):
        patches.wiring.check_clip_conds({"positive": [{}], "negative": with_image}, FRAMES)
    with pytest.raises(error, match="the middle_1 conditioning carries no RelightVid image"):
        patches.wiring.check_clip_conds({"negative": [{}], "middle_0": with_image, "middle_1": [{}]}, FRAMES)
    with pytest.raises(error, match="no conditioning carries the RelightVid image"):
        patches.wiring.check_clip_conds({"negative": [{}]}, FRAMES)
    with pytest.raises(error, match=f"the latent has 5 frames but the RelightVid conditioning has {FRAMES}"):
        patches.wiring.check_clip_conds({"positive": with_image, "negative": [{}]}, 5)


def test_check_wrapper_refuses_before_sampling(pack, patches):
    ran = []

    class Executor:  # ComfyUI's WrapperExecutor: callable, with the guider as class_obj
        class_obj = SimpleNamespace(original_conds={"positive": [{}], "negative": [{}]})

        def __call__(self, *args):
            ran.append(args)

    with pytest.raises(pack.core.errors.InputError, match="the positive conditioning carries no RelightVid image"):
        patches.patch.check_conds_wrapper(Executor(), torch.zeros(FRAMES, 4, 2, 2), "latent", "sampler", "sigmas")
    assert ran == []


def test_apply_names_each_missing_file_once_when_queued(pack):
    node_class = pack.nodes["RelightVidApplyModel"]
    inputs = {"model": ["1", 0], "iclight_fbc": "gone.safetensors", "temporal_weights": "gone.pth"}
    ((filed_under, message),) = queue_time_filings(pack.module, node_class, inputs)
    assert filed_under == "settings" and message.count("'gone.safetensors'") == message.count("'gone.pth'") == 1
    assert "iclight_fbc 'gone.safetensors' is not in models/relightvid or models/diffusion_models: download" in message
    assert "temporal_weights 'gone.pth' is not in models/relightvid: download relvid_mm_sd15_fbc.pth" in message
    assert "not registered" not in message and "animatediff" not in message and str(pack.base) not in message


def _miswired_prompt(positive_source: str) -> dict:
    """Apply RelightVid (2) → context windows (21) → KSampler (15), whose positive comes from ``positive_source``."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
        "2": {"class_type": "RelightVidApplyModel", "inputs": {"model": ["1", 0], "iclight_fbc": "a"}},
        "21": {"class_type": "RelightVidContextWindows", "inputs": {"model": ["2", 0]}},
        "13": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "x", "clip": ["1", 1]},
            "_meta": {"title": "CLIP Text Encode (prompt)"},
        },
        "3": {"class_type": "RelightVidNativeConditioning", "inputs": {"positive": ["13", 0], "negative": ["13", 0]}},
        "28": {"class_type": "ControlNetApplyAdvanced", "inputs": {"positive": ["3", 0], "negative": ["3", 2]}},
        "15": {
            "class_type": "KSampler",
            "inputs": {"model": ["21", 0], "positive": [positive_source, 0], "negative": ["13", 0]},
            "_meta": {"title": "KSampler"},
        },
    }


def test_refuses_clip_text_encode_wired_straight_into_a_sampler_when_queued(patches):
    wiring_problem = patches.wiring.wiring_problem
    problem = wiring_problem(_miswired_prompt("13"), "2")
    assert problem == (
        "KSampler (node 15) samples this RelightVid MODEL with positive from CLIP Text Encode (prompt) (node 13), "
        "which carries no RelightVid image; connect positive from a RelightVid Conditioning node, not straight "
        "from CLIP Text Encode."
    )
    # Fed by RelightVid Conditioning, directly or through other conditioning nodes, or another model: no problem.
    assert wiring_problem(_miswired_prompt("3"), "2") is None
    assert wiring_problem(_miswired_prompt("28"), "2") is None
    assert wiring_problem(_miswired_prompt("13"), "99") is None  # another Apply RelightVid's MODEL
    assert wiring_problem(None, "2") is None


def test_the_temporal_loader_checks_the_wiring_through_its_model_input(patches):
    """U-Net loader (4) → temporal loader (2, input relightvid_unet) → KSampler: both loaders see the miswiring."""
    prompt = _miswired_prompt("13")
    prompt["4"] = {"class_type": "RelightVidUNetLoader", "inputs": {"model": ["1", 0]}}
    prompt["2"] = {"class_type": "RelightVidTemporalLoader", "inputs": {"relightvid_unet": ["4", 0]}}
    assert patches.wiring.wiring_problem(prompt, "2") is not None
    assert patches.wiring.wiring_problem(prompt, "4") is not None


def test_files_the_miswiring_once_under_its_hidden_input(pack, patches):
    host = pack.module.nodes.host
    prompt = _miswired_prompt("13")
    prompt["2"]["inputs"].update(iclight_fbc=ICLIGHT_FILE, temporal_weights=MOTION_FILE)

    def validate():
        host.remember_queued_prompt({"prompt": prompt})
        return pack.nodes["RelightVidApplyModel"].VALIDATE_INPUTS("2")

    assert contextvars.copy_context().run(validate) == patches.wiring.wiring_problem(prompt, "2")
