"""What ComfyUI shows of a failing node: the error's class name alone as its type, and files named relative
to ComfyUI's folders, never by the server's absolute paths."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch
from _support.comfy_fakes import BASE_FILE


def comfyui_type_name(error: BaseException) -> str:
    """ComfyUI 0.3's ``execution.full_type_name`` of the error's class, as it reports ``exception_type``."""
    klass = type(error)
    return klass.__qualname__ if klass.__module__ == "builtins" else f"{klass.__module__}.{klass.__qualname__}"


def test_a_node_error_is_reported_by_its_class_name_and_stays_the_librarys_class(pack):
    with pytest.raises(pack.core.MissingFileError) as caught:
        pack.node("RelightVidUNetLoader").load(BASE_FILE, "gone.safetensors", "fp32")
    assert comfyui_type_name(caught.value) == "MissingFileError"
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value.__cause__, pack.core.MissingFileError)
    assert str(caught.value) == str(caught.value.__cause__)


def test_every_registered_node_function_reports_errors(pack):
    for node_id, node_class in pack.nodes.items():
        assert getattr(getattr(node_class, node_class.FUNCTION), "reports_errors", False), node_id


def test_the_sampling_wrapper_reports_errors_raised_inside_a_core_sampler(pack):
    patch = sys.modules[pack.module.__name__ + ".nodes.model_patch.patch"]
    key = sys.modules[pack.module.__name__ + ".nodes.model_patch.iclight"].RELIGHTVID_IMAGE_KEY

    def sampling(*_args):
        raise pack.core.errors.InputError("the latent has 3 frames but the RelightVid conditioning has 4; make it.")

    image = {key: torch.zeros(4, 8, 2, 2)}
    sampling.class_obj = SimpleNamespace(original_conds={"positive": [image], "negative": [{}]})  # the guider
    with pytest.raises(pack.core.errors.InputError) as caught:
        patch.check_conds_wrapper(sampling, torch.zeros(4, 4, 2, 2))
    assert comfyui_type_name(caught.value) == "InputError"


def test_messages_name_files_relative_to_comfyuis_folders(pack):
    host = pack.module.nodes.host
    models, inputs = pack.base / "models", pack.base / "input"
    text = (
        f"{models / 'relightvid' / 'x.pth'} is not a checkpoint; {inputs / 'mask' / '0001.png'} is missing "
        f"('{models / 'checkpoints'}'), {pack.base / 'elsewhere'} stays, look in {models / 'relightvid'}."
    )
    assert host.shown_text(text) == (
        f"models/relightvid/x.pth is not a checkpoint; input/mask/0001.png is missing ('models/checkpoints'), "
        f"{pack.base / 'elsewhere'} stays, look in models/relightvid."
    )
    error = host.reported_error(pack.core.errors.WeightFormatError(f"{models / 'relightvid' / 'x.pth'} is SDXL."))
    assert str(error) == "models/relightvid/x.pth is SDXL." and comfyui_type_name(error) == "WeightFormatError"


def test_folder_locations_leave_out_unregistered_folders(pack):
    host = pack.module.nodes.host
    assert host.folder_locations(("relightvid", "animatediff_models")) == "models/relightvid"
    assert host.folder_locations(("relightvid", "diffusion_models")) == "models/relightvid or models/diffusion_models"
