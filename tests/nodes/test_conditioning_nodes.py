"""Conditioning nodes: fitting, foreground, the three lighting sources and text."""

from __future__ import annotations

import pytest
import torch
from _support.comfy_fakes import ENV_MAP_FILE, clip_frames, disc_masks, queue_time_filings


def _foreground(pack, vae, frames=None, mask=None, **overrides):
    settings = {
        "size_policy": "center_crop",
        "width": 64,
        "height": 64,
        "gray": "official_128",
        "grow": 0,
        "feather": 0.0,
        "invert_mask": False,
        "skip_first_frames": 0,
        "frame_stride": 1,
        "max_frames": 0,
        **overrides,
    }
    frames = clip_frames(2, 80, 96) if frames is None else frames
    return pack.node("RelightVidForeground").prepare(vae, images=frames, mask=mask, **settings)


def test_fit_frames_aligns_frames_and_mask(pack):
    frames, masks = clip_frames(3, 48, 80), disc_masks(3, 48, 80)
    images, mask, width, height, count = pack.node("RelightVidFitFrames").fit(
        "multiple_of_64", 128, 64, 0, 1, 0, images=frames, mask=masks
    )
    assert (count, height, width) == (3, 64, 128) and images.shape == (3, 64, 128, 3) and mask.shape == (3, 64, 128)
    _, ones, *_ = pack.node("RelightVidFitFrames").fit("stretch", 64, 32, 0, 1, 0, images=frames)
    assert ones.shape == (3, 32, 64) and bool((ones == 1).all())


def test_foreground_composites_gray_outside_the_mask(pack, vae):
    frames = clip_frames(2, 64, 64)
    foreground, preview, mask, width, height, count = _foreground(pack, vae, frames, disc_masks(2, 64, 64))
    assert (width, height, count) == (64, 64, 2)
    assert torch.allclose(preview[:, 0, 0], torch.full((2, 3), 128 / 255))
    assert torch.equal(preview[:, 32, 32], frames[:, 32, 32])
    assert foreground.vae is vae and foreground.masks.shape == (2, 64, 64)
    assert vae.calls == []  # encoding happens in the sampler (once per IIE factor)


def test_foreground_does_not_change_its_inputs(pack, vae):
    frames, masks = clip_frames(2, 64, 64), disc_masks(2, 64, 64)
    frames_before, masks_before = frames.clone(), masks.clone()
    _foreground(pack, vae, frames, masks, grow=3, feather=2.0, invert_mask=True)
    assert torch.equal(frames, frames_before) and torch.equal(masks, masks_before)


def test_foreground_inverts_alpha_masks_and_accepts_one_mask_for_all_frames(pack, vae):
    alpha_style = 1.0 - disc_masks(1, 32, 32)  # Load Image: 1 on the transparent part, any size
    _, _, mask, *_ = _foreground(pack, vae, clip_frames(3, 64, 64), alpha_style, invert_mask=True)
    assert mask.shape == (3, 64, 64) and mask[:, 32, 32].eq(1).all() and mask[:, 0, 0].eq(0).all()


def test_foreground_mask_count_mismatch_is_one_line(pack, vae):
    with pytest.raises(pack.core.InputError, match="masks has 3 frames but frames has 2") as caught:
        _foreground(pack, vae, clip_frames(2, 64, 64), disc_masks(3, 64, 64))
    assert "\n" not in str(caught.value)


def test_foreground_bad_size_names_the_input(pack, vae):
    with pytest.raises(pack.core.InputError, match="width must be a multiple of 8 pixels; got 60"):
        _foreground(pack, vae, width=60)


def test_background_none_is_no_background(pack, vae):
    foreground, *_ = _foreground(pack, vae)
    background, preview = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, 0, 1, 0)
    assert background.frames is None and preview.shape == (2, 64, 64, 3) and not preview.any()


def test_background_fits_a_still_and_a_clip(pack, vae):
    foreground, *_ = _foreground(pack, vae, clip_frames(5, 64, 64))
    still, _ = pack.node("RelightVidBackground").fit(foreground, "loop", "cover", False, 0, 1, 0, images=clip_frames(1, 30, 90))
    assert still.frames.shape == (5, 64, 64, 3) and torch.equal(still.frames[0], still.frames[4])
    clip, _ = pack.node("RelightVidBackground").fit(
        foreground, "ping_pong", "stretch", True, 0, 1, 0, images=clip_frames(3, 16, 16)
    )
    assert clip.frames.shape == (5, 64, 64, 3) and torch.equal(clip.frames[1], clip.frames[3])


def test_background_trim_of_a_short_clip_names_both_counts(pack, vae):
    foreground, *_ = _foreground(pack, vae, clip_frames(4, 64, 64))
    with pytest.raises(pack.core.InputError, match="has 2 frames but the foreground has 4"):
        pack.node("RelightVidBackground").fit(foreground, "trim", "cover", False, 0, 1, 0, images=clip_frames(2, 64, 64))


def test_light_preset_lights_the_chosen_side(pack, vae):
    foreground, *_ = _foreground(pack, vae)
    background, preview = pack.node("RelightVidLightPreset").render(foreground, "left", "none", "#FF8000", 1.0, 1.0)
    assert background.frames.shape == (2, 64, 64, 3)
    assert preview[0, 32, 0, 0] > preview[0, 32, 63, 0] and preview[..., 2].max() == 0
    swept, _ = pack.node("RelightVidLightPreset").render(foreground, "left", "right", "#FFFFFF", 1.0, 0.5)
    assert not torch.equal(swept.frames[0], swept.frames[1])


def test_light_preset_validates_the_colour(pack):
    node_class = pack.nodes["RelightVidLightPreset"]
    assert queue_time_filings(pack.module, node_class, {"color": "#FFD8A8"}) == []
    ((_name, message),) = queue_time_filings(pack.module, node_class, {"color": "orange"})
    assert "hex colour" in message


def test_hdr_map_renders_plates_from_the_input_folder(pack, vae):
    node_class = pack.nodes["RelightVidHDRMap"]
    assert ENV_MAP_FILE in node_class.INPUT_TYPES()["required"]["env_map"][0]
    assert queue_time_filings(pack.module, node_class, {"env_map": ENV_MAP_FILE}) == []
    # When queued, ComfyUI's own list check refuses a file that is not there; a direct call names the input.
    for name, message in (("missing.hdr", "not found"), ("photo.png", "must be a .hdr or .exr")):
        assert [filed for filed, _ in queue_time_filings(pack.module, node_class, {"env_map": name})] == ["env_map"]
        with pytest.raises(pack.core.InputError, match=message):
            pack.node("RelightVidHDRMap").render(None, name, 0.0, 0.0, 90.0, 0.0, 0.0, "reinhard")
    assert len(node_class.IS_CHANGED(env_map=ENV_MAP_FILE)) == 64
    foreground, *_ = _foreground(pack, vae)
    background, preview = pack.node("RelightVidHDRMap").render(
        foreground, ENV_MAP_FILE, 0.0, 0.0, 90.0, 20.0, 0.0, "reinhard"
    )
    assert background.frames.shape == (2, 64, 64, 3) and 0 <= preview.min() and preview.max() <= 1
    assert not torch.equal(preview[0], preview[1])  # yaw_speed pans


def test_text_uses_the_empty_prompt_by_default(pack, clip):
    positive = clip.encode("warm sunset light")
    (text,) = pack.node("RelightVidTextConditioning").combine(positive, clip=clip)
    assert clip.encoded[-1] == "" and text.positive is positive
    assert text.negative[0][0].shape == positive[0][0].shape


def test_text_prefers_a_connected_negative(pack, clip):
    positive = [[torch.randn(1, 154, 32), {}]]
    negative = clip.encode("dark")
    (text,) = pack.node("RelightVidTextConditioning").combine(positive, negative=negative, clip=clip)
    assert text.positive is positive and text.negative is negative  # ComfyUI matches token counts when sampling


def test_text_from_two_text_encoders_is_refused(pack, clip):
    with pytest.raises(pack.core.InputError, match="different text encoders"):
        pack.node("RelightVidTextConditioning").combine([[torch.randn(1, 77, 768), {}]], negative=clip.encode("x"))


def test_text_that_already_carries_an_image_is_refused(pack, clip):
    positive = [[torch.randn(1, 77, 32), {"relightvid_image": torch.zeros(2, 8, 8, 8)}]]
    with pytest.raises(pack.core.InputError, match="already carries a RelightVid image"):
        pack.node("RelightVidTextConditioning").combine(positive, clip=clip)


def test_text_without_clip_or_negative_says_what_to_connect(pack, clip):
    with pytest.raises(pack.core.InputError, match="connect a CLIP"):
        pack.node("RelightVidTextConditioning").combine(clip.encode("x"))
