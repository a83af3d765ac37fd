"""The loader nodes on tiny weight files through the stand-in folder_paths."""

from __future__ import annotations

import sys

import pytest
from _support.comfy_fakes import BASE_FILE, FC_FILE, ICLIGHT_FILE, MOTION_FILE, queue_time_filings


def test_unet_loader_lists_files_of_its_folders(pack):
    inputs = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]
    assert BASE_FILE in list(inputs["base_checkpoint"][0])
    assert ICLIGHT_FILE in list(inputs["iclight_fbc"][0])
    motion_choices = pack.nodes["RelightVidTemporalLoader"].INPUT_TYPES()["required"]["temporal_weights"][0]
    assert MOTION_FILE in list(motion_choices)


def test_unet_loader_needs_comfyui_to_load_a_checkpoint(pack):
    # Building the MODEL is ComfyUI's (tests/integration/native_model_checks.py); outside it the node says so.
    with pytest.raises(pack.core.InputError, match="runs only inside ComfyUI"):
        pack.node("RelightVidUNetLoader").load(BASE_FILE, ICLIGHT_FILE, "auto")


def test_unet_loader_takes_its_base_from_one_place(pack, base_model):
    loader = pack.node("RelightVidUNetLoader")
    with pytest.raises(pack.core.InputError, match="dtype fp16 applies to a base_checkpoint file"):
        loader.load("(connected MODEL)", ICLIGHT_FILE, "fp16", model=base_model)
    with pytest.raises(pack.core.InputError, match="a MODEL is connected but base_checkpoint is"):
        loader.load(BASE_FILE, ICLIGHT_FILE, "auto", model=base_model)


def test_unet_loader_refuses_the_fc_file_in_one_sentence(pack):
    with pytest.raises(pack.core.WeightFormatError, match="fc") as caught:
        pack.node("RelightVidUNetLoader").load(BASE_FILE, FC_FILE, "fp32")
    assert "\n" not in str(caught.value)


def test_unet_loader_without_model_for_model_choice(pack):
    with pytest.raises(pack.core.InputError, match="no MODEL is connected"):
        pack.node("RelightVidUNetLoader").load("(connected MODEL)", ICLIGHT_FILE, "fp32")


def _filings(pack, node_id: str, inputs: dict) -> list[tuple[str, str]]:
    return queue_time_filings(pack.module, pack.nodes[node_id], inputs)


def test_unet_loader_names_each_missing_file_once_when_queued(pack):
    filings = _filings(
        pack,
        "RelightVidUNetLoader",
        {"base_checkpoint": "missing.safetensors", "iclight_fbc": "gone.safetensors", "dtype": "auto"},
    )
    # One refusal, under the hidden id only: no stock "Value not in list" under either file input.
    assert [name for name, _message in filings] == ["settings"], filings
    message = filings[0][1]
    assert message.count("'missing.safetensors'") == 1 and message.count("'gone.safetensors'") == 1, message
    assert (
        "base_checkpoint 'missing.safetensors' is not in models/checkpoints: put an SD1.5 checkpoint there "
        "(realisticVisionV51_v51VAE.safetensors: https://huggingface.co/lllyasviel/fav_models/resolve/main/fav/"
        "realisticVisionV51_v51VAE.safetensors) or choose (connected MODEL)"
    ) in message
    assert (
        "iclight_fbc 'gone.safetensors' is not in models/relightvid or models/diffusion_models: download "
        "iclight_sd15_fbc.safetensors (IC-Light's fbc offsets) from "
        "https://huggingface.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fbc.safetensors into models/relightvid"
    ) in message
    assert str(pack.base) not in message and "\n" not in message
    fine = {"base_checkpoint": "(connected MODEL)", "iclight_fbc": ICLIGHT_FILE, "dtype": "auto"}
    assert _filings(pack, "RelightVidUNetLoader", fine) == []
    assert _filings(pack, "RelightVidUNetLoader", {**fine, "base_checkpoint": BASE_FILE}) == []


def test_unet_loader_refuses_the_fc_file_when_queued_naming_what_it_is(pack):
    inputs = {"base_checkpoint": BASE_FILE, "iclight_fbc": FC_FILE, "dtype": "auto"}
    ((name, message),) = _filings(pack, "RelightVidUNetLoader", inputs)
    assert name == "settings"
    assert message.startswith(
        f"settings - iclight_fbc '{FC_FILE}' is the IC-Light fc model (foreground-only, 8-channel), but iclight_fbc "
        "needs IC-Light's fbc offsets: download iclight_sd15_fbc.safetensors"
    ), message


def test_unet_loader_direct_call_names_the_missing_file_and_its_source(pack):
    loader = pack.node("RelightVidUNetLoader")
    with pytest.raises(pack.core.MissingFileError, match="iclight_fbc .* models/relightvid or models/diffusion_models"):
        loader.load(BASE_FILE, "iclight_sd15_fbc.safetensors", "fp32")
    with pytest.raises(pack.core.MissingFileError, match="base_checkpoint 'nope.safetensors' is not in models/check"):
        loader.load("nope.safetensors", ICLIGHT_FILE, "fp32")


def test_temporal_loader_names_a_missing_file_once_without_unregistered_folders(pack):
    filings = _filings(pack, "RelightVidTemporalLoader", {"temporal_weights": "nope.pth"})
    assert filings == [
        (
            "settings",
            "settings - temporal_weights 'nope.pth' is not in models/relightvid: download "
            "relvid_mm_sd15_fbc.pth (RelightVid's temporal weights) from "
            "https://huggingface.co/aleafy/RelightVid/resolve/main/relvid_mm_sd15_fbc.pth into models/relightvid, "
            "then press R in ComfyUI to refresh the lists.",
        )
    ]
    # A file of another kind is named for what it is.
    ((_name, message),) = _filings(pack, "RelightVidTemporalLoader", {"temporal_weights": ICLIGHT_FILE})
    assert f"'{ICLIGHT_FILE}' is an IC-Light fbc offset (12-channel), but temporal_weights needs" in message
    assert _filings(pack, "RelightVidTemporalLoader", {"temporal_weights": MOTION_FILE}) == []


def test_temporal_loader_refuses_a_spatial_file_as_motion(pack, base_model):
    with pytest.raises(pack.core.WeightFormatError, match="temporal_weights"):
        pack.node("RelightVidTemporalLoader").load(base_model, ICLIGHT_FILE)


@pytest.mark.parametrize("node_id", ["RelightVidUNetLoader", "RelightVidTemporalLoader", "RelightVidApplyModel"])
def test_loader_lists_offer_only_files_that_fit_each_slot(pack, node_id):
    required = pack.nodes[node_id].INPUT_TYPES()["required"]
    # list() reads what /object_info sends: the lists' own membership test lets any name through (FileChoices).
    if "iclight_fbc" in required:
        assert list(required["iclight_fbc"][0]) == [ICLIGHT_FILE]
    if "temporal_weights" in required:
        assert list(required["temporal_weights"][0]) == [MOTION_FILE]
    if "base_checkpoint" in required:
        assert list(required["base_checkpoint"][0]) == ["(connected MODEL)", BASE_FILE]


def test_loader_lists_skip_damaged_files_and_follow_file_changes(pack):
    folder = pack.base / "models" / "relightvid"
    damaged = folder / "damaged.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    try:
        choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["iclight_fbc"][0]
        assert "damaged.safetensors" not in list(choices)
        damaged.write_bytes((folder / ICLIGHT_FILE).read_bytes())  # same name, now a real fbc file
        choices = pack.nodes["RelightVidUNetLoader"].INPUT_TYPES()["required"]["iclight_fbc"][0]
        assert "damaged.safetensors" in list(choices)
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
