"""Files at the library's entry points: masks read as users mean them, damaged or ambiguous files named."""

from __future__ import annotations

import builtins
import os

import cv2
import numpy as np
import pytest
import torch
from _support.tiny_weights import tiny_official_set
from safetensors.torch import save_file

from relightvid_core import TINY, load_relightvid_unet
from relightvid_core.conditioning import load_text_encoder
from relightvid_core.demo import tiny_text_encoder
from relightvid_core.demo import _save_text_encoder as save_text_encoder
from relightvid_core.errors import InputError, UnreadableFileError, WeightFormatError
from relightvid_core.model_files import ModelFiles, load_unet
from relightvid_core.video_io import read_mask
from relightvid_core.weights import WeightFormat, detect_format, load_motion_weights
from relightvid_core.weights import files as weight_files
from relightvid_core.weights.detect import resolve_motion_variant
from relightvid_core.weights.files import open_source


def _shapes(state_dict):
    return {key: tuple(value.shape) for key, value in state_dict.items()}


@pytest.fixture(scope="module")
def official():
    return tiny_official_set(seed=0)


@pytest.fixture(scope="module")
def unprefixed_motion(official):
    """RelightVid's temporal weights without their ``unet.`` prefix: laid out exactly like AnimateDiff v3's."""
    return {key.removeprefix("unet."): value for key, value in official["motion"].items()}


def test_a_cut_out_mask_is_read_from_its_alpha(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)  # black colour everywhere; the subject lives only in the alpha
    rgba[2:6, 2:6, 3] = 255
    cv2.imwrite(str(tmp_path / "0000.png"), rgba)
    mask = read_mask(tmp_path / "0000.png")
    assert mask[3, 3] == 1.0 and mask[0, 0] == 0.0 and mask.sum() == 16


def test_an_opaque_colour_mask_is_read_as_grey(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:6, 2:6, :3] = 255
    cv2.imwrite(str(tmp_path / "0000.png"), rgba)
    mask = read_mask(tmp_path / "0000.png")
    assert mask[3, 3] == 1.0 and mask.sum() == 16


def test_temporal_files_are_classified_by_content(official, unprefixed_motion):
    assert detect_format(_shapes(official["motion"])).format is WeightFormat.RELIGHTVID_MOTION
    ambiguous = detect_format(_shapes(unprefixed_motion))
    assert ambiguous.format is WeightFormat.AMBIGUOUS_MOTION
    assert resolve_motion_variant(ambiguous, "animatediff_v3").format is WeightFormat.ANIMATEDIFF_V3
    assert resolve_motion_variant(ambiguous, "relightvid").format is WeightFormat.RELIGHTVID_MOTION


def test_an_ambiguous_temporal_file_is_refused_naming_the_option(unprefixed_motion):
    with pytest.raises(WeightFormatError, match="motion_variant="):
        load_motion_weights(unprefixed_motion, dtype=torch.float32, config=TINY)


def test_an_unknown_motion_variant_is_refused(unprefixed_motion):
    with pytest.raises(InputError, match="motion variant must be one of"):
        load_motion_weights(unprefixed_motion, dtype=torch.float32, config=TINY, motion_variant="v4")


def test_animatediff_v3_gets_per_frame_groupnorm(official, unprefixed_motion):
    kwargs = {"dtype": torch.float32, "config": TINY}
    v3 = load_relightvid_unet(official["sd"], official["iclight"], unprefixed_motion, motion_variant="animatediff_v3", **kwargs)
    relightvid = load_relightvid_unet(official["sd"], official["iclight"], official["motion"], **kwargs)
    assert v3.config.use_inflated_groupnorm and not relightvid.config.use_inflated_groupnorm
    assert not v3.config.motion_module_mid_block


def test_an_unreadable_weight_file_is_named_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))

    def no_permission(name, *args, **kwargs):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return builtins.open(name, *args, **kwargs)

    monkeypatch.setattr(weight_files, "open", no_permission, raising=False)
    with pytest.raises(UnreadableFileError, match="cannot be read") as caught:
        open_source(path)
    assert "truncated" not in str(caught.value)


def test_a_pipe_where_a_weight_file_should_be_is_refused(tmp_path):
    pipe = tmp_path / "weights.safetensors"
    os.mkfifo(pipe)  # opening it for reading would block: it must be refused before
    with pytest.raises(UnreadableFileError, match="not a regular file"):
        open_source(pipe)


@pytest.fixture
def text_folder(tmp_path):
    save_text_encoder(tmp_path, tiny_text_encoder())
    return tmp_path


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda f: (f / "text_encoder/model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{"), "truncated"),
        (lambda f: (f / "text_encoder/config.json").write_text("nope"), "not valid JSON"),
        (lambda f: (f / "tokenizer/vocab.json").write_text("[1, 2]"), "not an object"),
        (lambda f: (f / "text_encoder/model.safetensors").unlink(), "model.safetensors or pytorch_model.bin"),
    ],
    ids=["truncated weights", "config not JSON", "vocab not an object", "no weights"],
)
def test_a_damaged_text_encoder_folder_is_named(damage, needle, text_folder):
    damage(text_folder)
    with pytest.raises((WeightFormatError, InputError, FileNotFoundError), match=needle):
        load_text_encoder(text_folder)


def test_a_merged_file_without_config_is_named_for_both_audiences(tmp_path, official):
    path = tmp_path / "merged.safetensors"
    unet = load_relightvid_unet(official["sd"], official["iclight"], official["motion"], dtype=torch.float32, config=TINY)
    save_file({key: value.contiguous() for key, value in unet.state_dict().items()}, str(path))
    with pytest.raises(WeightFormatError, match="relightvid convert") as caught:
        load_unet(ModelFiles(sd=tmp_path, merged=path), dtype=torch.float32, device="cpu")
    assert "pass config=" in str(caught.value)
