"""Every weight layout users bring, on tiny synthetic files made here, and every refusal's message."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from _support.tiny_weights import (
    ldm_checkpoint_extras,
    tiny_animatediff_v2,
    tiny_network,
    tiny_official_set,
    to_ldm,
)
from safetensors.torch import save_file

from relightvid_core import TINY, MissingFileError, WeightFormatError, merge_official_weights
from relightvid_core.weights import (
    WeightFormat,
    detect_format,
    load_motion_weights,
    load_relightvid_unet,
    load_spatial_weights,
    save_merged_unet,
)


@pytest.fixture(scope="module")
def tiny_set():
    return tiny_official_set(seed=3)


@pytest.fixture(scope="module")
def reference(tiny_set):
    """The merge of the in-memory diffusers-keyed set; every file layout must load to exactly this."""
    return merge_official_weights(tiny_set["sd"], tiny_set["motion"], tiny_set["iclight"])


def _shapes(state_dict):
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _load(base, iclight, motion, **kwargs):
    return load_relightvid_unet(base, iclight, motion, dtype=torch.float32, config=TINY, **kwargs)


def _assert_matches(model, reference):
    state = model.state_dict()
    assert set(state) == set(reference)
    assert all(torch.equal(state[key].contiguous(), reference[key]) for key in reference)


def _save(path: Path, state_dict) -> Path:
    if path.suffix == ".safetensors":
        save_file({key: value.contiguous() for key, value in state_dict.items()}, str(path))
    else:
        torch.save(state_dict, path)
    return path


@pytest.mark.parametrize("unet_file", ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"])
def test_load_from_diffusers_folder(tmp_path, tiny_set, reference, unet_file):
    (tmp_path / "rv51" / "unet").mkdir(parents=True)
    _save(tmp_path / "rv51" / "unet" / unet_file, tiny_set["sd"])
    iclight = _save(tmp_path / "iclight_sd15_fbc.safetensors", tiny_set["iclight"])
    motion = _save(tmp_path / "relvid_mm_sd15_fbc.pth", tiny_set["motion"])
    _assert_matches(_load(tmp_path / "rv51", iclight, motion), reference)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_load_from_single_file_ldm_checkpoint(tmp_path, tiny_set, reference, suffix):
    checkpoint = {**to_ldm(tiny_set["sd"], "model.diffusion_model."), **ldm_checkpoint_extras()}
    if suffix == ".ckpt":
        checkpoint = {"state_dict": checkpoint, "global_step": 1000}
    base = _save(tmp_path / f"realisticVisionV51{suffix}", checkpoint)
    _assert_matches(_load(base, tiny_set["iclight"], tiny_set["motion"]), reference)


@pytest.mark.parametrize("prefix", ["", "diffusion_model."])
def test_load_from_comfyui_model_state_dict(tiny_set, reference, prefix):
    comfy_weights = to_ldm(tiny_set["sd"], prefix)  # ModelPatcher.model(.diffusion_model).state_dict()
    _assert_matches(_load(comfy_weights, tiny_set["iclight"], tiny_set["motion"]), reference)


def test_load_ldm_keyed_iclight_offsets(tmp_path, tiny_set, reference):
    offsets = _save(tmp_path / "iclight_sd15_fbc_unet_ldm.safetensors", to_ldm(tiny_set["iclight"]))
    _assert_matches(_load(tiny_set["sd"], offsets, tiny_set["motion"]), reference)


def test_iclight_fc_is_refused_as_the_wrong_variant(tmp_path, tiny_set):
    fc, _ = tiny_network(seed=4, in_channels=8).state_dict(), None
    fc_file = _save(tmp_path / "iclight_sd15_fc.safetensors", {k: v for k, v in fc.items() if "motion" not in k})
    with pytest.raises(WeightFormatError, match=r"iclight_sd15_fc\.safetensors is the IC-Light fc .*fbc"):
        _load(tiny_set["sd"], fc_file, tiny_set["motion"])


def test_sdxl_checkpoint_is_refused(tmp_path, tiny_set):
    sdxl = {**to_ldm(tiny_set["sd"], "model.diffusion_model."), "model.diffusion_model.label_emb.0.0.weight": torch.zeros(4, 4)}
    sdxl_file = _save(tmp_path / "sd_xl_base_1.0.safetensors", sdxl)
    with pytest.raises(WeightFormatError, match=r"sd_xl_base_1\.0\.safetensors is an SDXL model.*SD1\.5"):
        _load(sdxl_file, tiny_set["iclight"], tiny_set["motion"])


def test_animatediff_v1_switches_to_its_position_encoding_length(tmp_path, tiny_set):
    v1 = {key[len("unet.") :]: value for key, value in tiny_set["motion"].items()}
    v1 = {key: (value[:, :24] if key.endswith("pos_encoder.pe") else value) for key, value in v1.items()}
    model = _load(tiny_set["sd"], tiny_set["iclight"], _save(tmp_path / "mm_sd_v15.ckpt", v1))
    assert model.max_frames == 24
    assert not model.config.use_inflated_groupnorm


def test_animatediff_v2_switches_to_mid_block_and_per_frame_norm(tmp_path, tiny_set):
    model = _load(tiny_set["sd"], tiny_set["iclight"], _save(tmp_path / "mm_sd_v15_v2.safetensors", tiny_animatediff_v2()))
    assert len(model.mid_block.motion_modules) == 1
    assert model.config.use_inflated_groupnorm
    assert model.max_frames == 32


def test_space_full_unet_overrides_spatial_weights_and_logs_it(tmp_path, tiny_set, reference, caplog):
    space = {"unet." + key: value for key, value in reference.items()}
    tweaked_key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    space["unet." + tweaked_key] = space["unet." + tweaked_key] + 1
    space_file = _save(tmp_path / "relvid_mm_sd15_fbc_unet.pth", space)
    assert detect_format(_shapes(space)).format is WeightFormat.RELIGHTVID_SPACE_UNET
    with caplog.at_level(logging.INFO, logger="relightvid_core.weights.load"):
        model = _load(tiny_set["sd"], tiny_set["iclight"], space_file)
    torch.testing.assert_close(model.state_dict()[tweaked_key], space["unet." + tweaked_key])
    assert "replaces 682 spatial tensors" in caplog.text
    assert f"1 of them differ (first: ['{tweaked_key}'])" in caplog.text


def test_truncated_safetensors_is_reported(tmp_path, tiny_set):
    whole = _save(tmp_path / "whole.safetensors", tiny_set["iclight"]).read_bytes()
    broken = tmp_path / "iclight_sd15_fbc.safetensors"
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WeightFormatError, match=r"iclight_sd15_fbc\.safetensors is truncated"):
        _load(tiny_set["sd"], broken, tiny_set["motion"])


def test_truncated_pickle_is_reported(tmp_path, tiny_set):
    whole = _save(tmp_path / "whole.pth", tiny_set["motion"]).read_bytes()
    broken = tmp_path / "relvid_mm_sd15_fbc.pth"
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WeightFormatError, match=r"relvid_mm_sd15_fbc\.pth is truncated"):
        _load(tiny_set["sd"], tiny_set["iclight"], broken)


class _RunsCode:
    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_carrying_code_is_refused_and_not_run(tmp_path, tiny_set):
    payload = _RunsCode()
    payload.marker = tmp_path / "code-was-run"
    malicious = tmp_path / "relvid_mm_sd15_fbc.pth"
    torch.save({**tiny_set["motion"], "payload": payload}, malicious)
    with pytest.raises(WeightFormatError, match=r"refused to load .*relvid_mm_sd15_fbc\.pth"):
        _load(tiny_set["sd"], tiny_set["iclight"], malicious)
    assert not payload.marker.exists()


def test_file_in_the_wrong_slot_says_what_it_is(tmp_path, tiny_set):
    motion_file = _save(tmp_path / "relvid_mm_sd15_fbc.pth", tiny_set["motion"])
    with pytest.raises(WeightFormatError, match=r"relvid_mm_sd15_fbc\.pth is RelightVid temporal weights.*base"):
        _load(motion_file, tiny_set["iclight"], tiny_set["motion"])


def test_diffusers_motion_adapter_is_refused(tmp_path, tiny_set):
    adapter = {"down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q.weight": torch.zeros(32, 32)}
    adapter_file = _save(tmp_path / "animatediff-motion-adapter.safetensors", adapter)
    with pytest.raises(WeightFormatError, match="diffusers MotionAdapter.*original AnimateDiff"):
        load_motion_weights(adapter_file, config=TINY)


def test_motion_for_another_network_lists_the_mismatch(tmp_path, tiny_set):
    wrong = {key: value for key, value in tiny_set["motion"].items() if not key.startswith("unet.down_blocks.3.")}
    wrong_file = _save(tmp_path / "mm_sdxl_v10_beta.safetensors", wrong)
    with pytest.raises(WeightFormatError, match=r"mm_sdxl_v10_beta\.safetensors does not fit the temporal modules: missing 56"):
        load_motion_weights(wrong_file, config=TINY)


def test_missing_file_is_named(tmp_path, tiny_set):
    with pytest.raises(MissingFileError, match="nowhere.safetensors does not exist"):
        _load(tmp_path / "nowhere.safetensors", tiny_set["iclight"], tiny_set["motion"])


def test_diffusers_folder_without_unet_is_named(tmp_path, tiny_set):
    with pytest.raises(MissingFileError, match="has no unet/diffusion_pytorch_model"):
        _load(tmp_path, tiny_set["iclight"], tiny_set["motion"])


def test_non_merged_base_alone_asks_for_the_other_files(tiny_set):
    with pytest.raises(WeightFormatError, match="IC-Light fbc offsets and the temporal weights are needed"):
        load_relightvid_unet(tiny_set["sd"], config=TINY)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_merged_file_round_trip(tmp_path, tiny_set, reference, dtype):
    model = _load(tiny_set["sd"], tiny_set["iclight"], tiny_set["motion"])
    path = save_merged_unet(model, tmp_path / "relightvid_fbc.safetensors")
    assert detect_format(_shapes(model.state_dict())).format is WeightFormat.RELIGHTVID_MERGED
    reloaded = load_relightvid_unet(path, dtype=dtype)
    assert reloaded.dtype == dtype
    assert all(torch.equal(value, reference[key].to(dtype)) for key, value in reloaded.state_dict().items())
    assert not list(tmp_path.glob("*.partial"))


def test_two_phase_loading_shares_tensors(tiny_set):
    spatial = load_spatial_weights(tiny_set["sd"], tiny_set["iclight"], dtype=torch.float32, config=TINY)
    motion = load_motion_weights(tiny_set["motion"], dtype=torch.float32, config=TINY)
    from relightvid_core.weights import build_unet

    model = build_unet(spatial, motion, TINY)
    assert model.conv_in.weight.data_ptr() == spatial["conv_in.weight"].data_ptr()
    assert model.conv_in.weight.shape[1] == 12
