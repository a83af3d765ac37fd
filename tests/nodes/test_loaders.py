"""The loader nodes on tiny weight files through the stand-in folder_paths."""

from __future__ import annotations

import sys

import pytest
import torch
from _support.comfy_fakes import BASE_FILE, FC_FILE, ICLIGHT_FILE, MOTION_FILE

from relightvid_core import TINY


def test_unet_loader_lists_files_of_its_folders(pack):
    inputs = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]
    assert BASE_FILE in inputs["base_checkpoint"][0]
    assert ICLIGHT_FILE in inputs["iclight_fbc"][0]
    motion_choices = pack.nodes["RelightVidTemporalLoader"].INPUT_TYPES()["required"]["temporal_weights"][0]
    assert MOTION_FILE in motion_choices


def test_unet_loader_builds_spatial_weights_from_a_checkpoint_file(pack):
    (spatial,) = pack.node("RelightVidUNetLoader").load(BASE_FILE, ICLIGHT_FILE, "auto")
    assert spatial.dtype == torch.float32  # auto without ComfyUI = the CPU's choice
    assert spatial.config["block_out_channels"] == TINY["block_out_channels"]
    assert spatial.state_dict["conv_in.weight"].shape[1] == 12


def test_unet_loader_reuses_a_connected_model_without_changing_it(pack, base_model):
    before = {key: value.clone() for key, value in base_model.state_dict.items()}
    loader = pack.node("RelightVidUNetLoader")
    (from_model,) = loader.load("(connected MODEL)", ICLIGHT_FILE, "fp32", model=base_model)
    (from_file,) = loader.load(BASE_FILE, ICLIGHT_FILE, "fp32")
    for key, value in from_file.state_dict.items():
        assert torch.equal(from_model.state_dict[key], value), key
    assert all(torch.equal(base_model.state_dict[key], value) for key, value in before.items())


def test_unet_loader_dtype_choice(pack):
    (spatial,) = pack.node("RelightVidUNetLoader").load(BASE_FILE, ICLIGHT_FILE, "bf16")
    assert spatial.dtype == torch.bfloat16 and spatial.state_dict["conv_in.weight"].dtype == torch.bfloat16


def test_unet_loader_refuses_the_fc_file_in_one_sentence(pack):
    with pytest.raises(pack.core.WeightFormatError, match="fc") as caught:
        pack.node("RelightVidUNetLoader").load(BASE_FILE, FC_FILE, "fp32")
    assert "\n" not in str(caught.value)


def test_unet_loader_without_model_for_model_choice(pack):
    with pytest.raises(pack.core.InputError, match="no MODEL is connected"):
        pack.node("RelightVidUNetLoader").load("(connected MODEL)", ICLIGHT_FILE, "fp32")


def test_unet_loader_missing_file_names_the_folder(pack):
    loader_class = pack.nodes["RelightVidUNetLoader"]
    message = loader_class.VALIDATE_INPUTS("missing.safetensors")
    assert message.startswith("base_checkpoint 'missing.safetensors' was not found in models/checkpoints")
    assert loader_class.VALIDATE_INPUTS(BASE_FILE) is True
    assert loader_class.VALIDATE_INPUTS("(connected MODEL)") is True
    # ComfyUI itself refuses an iclight_fbc value that is not in the list; a direct call names the folders.
    with pytest.raises(pack.core.MissingFileError, match="iclight_fbc .* models/relightvid .* models/diffusion_models"):
        pack.node("RelightVidUNetLoader").load(BASE_FILE, "iclight_sd15_fbc.safetensors", "fp32")


def test_temporal_loader_builds_a_managed_model(pack, relightvid_model):
    unet = relightvid_model.model.diffusion_model
    assert isinstance(unet, pack.core.RelightVidUNet)
    assert unet.max_frames == 32
    assert relightvid_model.model.device == torch.device("cpu")
    assert pack.nodes["RelightVidTemporalLoader"].VALIDATE_INPUTS("nope.pth").startswith("temporal_weights")


def test_temporal_loader_refuses_a_spatial_file_as_motion(pack):
    (spatial,) = pack.node("RelightVidUNetLoader").load(BASE_FILE, ICLIGHT_FILE, "fp32")
    with pytest.raises(pack.core.WeightFormatError):
        pack.node("RelightVidTemporalLoader").load(spatial, ICLIGHT_FILE)


def test_loader_lists_offer_only_files_that_fit_each_slot(pack):
    iclight_choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["iclight_fbc"][0]
    motion_choices = pack.nodes["RelightVidTemporalLoader"].INPUT_TYPES()["required"]["temporal_weights"][0]
    base_choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["base_checkpoint"][0]
    assert FC_FILE not in iclight_choices and MOTION_FILE not in iclight_choices
    assert ICLIGHT_FILE not in motion_choices and FC_FILE not in motion_choices
    assert base_choices[1:] == [BASE_FILE]


def test_loader_lists_skip_damaged_files_and_follow_file_changes(pack):
    folder = pack.base / "models" / "relightvid"
    damaged = folder / "damaged.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    try:
        choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["iclight_fbc"][0]
        assert "damaged.safetensors" not in choices
        damaged.write_bytes((folder / ICLIGHT_FILE).read_bytes())  # same name, now a real fbc file
        choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["iclight_fbc"][0]
        assert "damaged.safetensors" in choices
    finally:
        damaged.unlink()


def test_model_folder_is_created_at_start_up(pack):
    host = sys.modules[pack.module.__name__ + ".nodes.host"]
    folder = pack.base / "models" / "relightvid"
    moved = folder.with_name("relightvid-moved")
    folder.rename(moved)
    try:
        host.register_model_folder()
        assert folder.is_dir()
    finally:
        folder.rmdir()
        moved.rename(folder)
