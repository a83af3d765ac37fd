"""The official merge, reproduced bit for bit from the golden inputs, in memory and from files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from relightvid_core import merge_official_weights
from relightvid_core.weights import load_relightvid_unet, save_merged_unet


@pytest.fixture(scope="module")
def golden_merge(golden_dir):
    return {
        "sd": load_file(golden_dir / "merge_in_sd_unet.safetensors"),
        "iclight": load_file(golden_dir / "merge_in_iclight_offset.safetensors"),
        "motion": torch.load(golden_dir / "merge_in_relvid_mm.pth", weights_only=True),
        "expected": load_file(golden_dir / "tiny_unet3d_state_dict.safetensors"),
        "config": json.loads((golden_dir / "tiny_unet3d_config.json").read_text()),
    }


def _assert_state_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    different = [key for key in expected if not torch.equal(actual[key].contiguous(), expected[key])]
    assert not different, f"{len(different)} tensors differ, first {different[:3]}"


def test_merge_official_weights_is_bit_exact(golden_merge):
    merged = merge_official_weights(golden_merge["sd"], golden_merge["motion"], golden_merge["iclight"])
    _assert_state_equal(merged, golden_merge["expected"])


def test_merge_official_weights_leaves_inputs_untouched(golden_merge):
    before = {key: value.clone() for key, value in golden_merge["sd"].items()}
    merge_official_weights(golden_merge["sd"], golden_merge["motion"], golden_merge["iclight"])
    _assert_state_equal(golden_merge["sd"], before)


@pytest.mark.parametrize("motion_file", ["merge_in_relvid_mm.pth", "merge_in_relvid_mm.safetensors"])
def test_load_relightvid_unet_from_files_is_bit_exact(golden_dir, golden_merge, motion_file):
    model = load_relightvid_unet(
        golden_dir / "merge_in_sd_unet.safetensors",
        golden_dir / "merge_in_iclight_offset.safetensors",
        golden_dir / motion_file,
        dtype=torch.float32,
        config=golden_merge["config"],
    )
    _assert_state_equal(model.state_dict(), golden_merge["expected"])


def test_load_relightvid_unet_casts_after_the_fp32_merge(golden_dir, golden_merge):
    model = load_relightvid_unet(
        golden_dir / "merge_in_sd_unet.safetensors",
        golden_dir / "merge_in_iclight_offset.safetensors",
        golden_dir / "merge_in_relvid_mm.pth",
        dtype=torch.bfloat16,
        config=golden_merge["config"],
    )
    expected = {key: value.to(torch.bfloat16) for key, value in golden_merge["expected"].items()}
    _assert_state_equal(model.state_dict(), expected)


def test_merged_file_round_trip_reproduces_the_official_output(golden_dir, golden_merge, tmp_path):
    model = load_relightvid_unet(
        golden_dir / "merge_in_sd_unet.safetensors",
        golden_dir / "merge_in_iclight_offset.safetensors",
        golden_dir / "merge_in_relvid_mm.safetensors",
        dtype=torch.float32,
        config=golden_merge["config"],
    )
    reloaded = load_relightvid_unet(save_merged_unet(model, tmp_path / "relightvid.safetensors"), dtype=torch.float32)
    io = load_file(golden_dir / "unet_io.safetensors")
    with torch.no_grad():
        out = reloaded(io["f8.sample"], io["f8.timestep"], io["f8.encoder_hidden_states"])
    torch.testing.assert_close(out, io["f8.out"], atol=2e-5, rtol=1e-5)
