"""Size policies: output sizes, where a known pixel lands, and identical geometry for frames and masks."""

from __future__ import annotations

import pytest
import torch

from relightvid_core.conditioning import SizePolicy, apply_geometry, fit_to_size, plan_geometry
from relightvid_core.errors import InputError


def _marker(height, width, y, x, count=1):
    frames = torch.zeros(count, height, width, 3)
    frames[:, y, x] = 1.0
    return frames


def _argmax_yx(image_hw: torch.Tensor) -> tuple[int, int]:
    index = int(image_hw.argmax())
    return divmod(index, image_hw.shape[1])


def test_center_crop_larger_source_crops_without_resizing():
    plan = plan_geometry(600, 700, "center_crop", 512, 512)
    assert plan.output_size == (512, 512) and plan.resized_size == (600, 700)
    out = apply_geometry(_marker(600, 700, 44 + 10, 94 + 20), plan)
    assert out.shape == (1, 512, 512, 3)
    assert out[0, 10, 20, 0] == 1.0 and out.sum() == 3.0


def test_center_crop_smaller_source_pads_black_like_torchvision():
    plan = plan_geometry(5, 6, SizePolicy.CENTER_CROP, width=8, height=8)
    out = apply_geometry(torch.ones(1, 5, 6, 3), plan)
    # torchvision pads (8-6)//2 = 1 left, 1 right, (8-5)//2 = 1 top and 2 bottom.
    assert out[0, :, :, 0].sum() == 30
    assert out[0, 1:6, 1:7].min() == 1.0 and out[0, 0].max() == 0.0 and out[0, 6:].max() == 0.0


def test_center_crop_odd_difference_rounds_like_torchvision():
    plan = plan_geometry(11, 8, "center_crop", 8, 8)
    assert plan.window_top == 2  # int(round(1.5)) = 2


def test_cover_fills_the_target_and_keeps_the_centre():
    plan = plan_geometry(100, 200, "cover", 64, 64)
    assert plan.resized_size == (64, 128) and plan.output_size == (64, 64)
    assert plan.source_to_output(49.5, 99.5) == pytest.approx((31.5, 31.5))


def test_contain_letterboxes_and_maps_a_pixel_where_expected():
    plan = plan_geometry(64, 128, "contain", 64, 64)
    assert plan.resized_size == (32, 64) and plan.window_top == -16
    frames = torch.zeros(1, 64, 128, 3)
    # A 6x6 block centred on (22.5, 42.5): wide enough that the antialiased 2x shrink keeps its centre at 1.
    frames[:, 20:26, 40:46] = 1.0
    out = apply_geometry(frames, plan)
    assert plan.source_to_output(22.5, 42.5) == pytest.approx((27.0, 21.0))
    assert out[0, 27, 21, 0] == pytest.approx(1.0) and _argmax_yx(out[0, :, :, 0]) == (27, 21)
    assert out[0, :16].max() == 0.0 and out[0, 48:].max() == 0.0


def test_stretch_ignores_aspect():
    plan = plan_geometry(30, 90, "stretch", width=40, height=48)
    assert plan.resized_size == (48, 40) and plan.output_size == (48, 40)


def test_multiple_of_64_snaps_the_source_size_and_keeps_aspect():
    plan = plan_geometry(720, 1280, "multiple_of_64")
    assert plan.output_size == (704, 1280)
    plan = plan_geometry(720, 1280, "multiple_of_64", width=512, height=512)
    assert plan.output_size == (256, 512)  # 512 x 288 fitted in the box, 288 → 256
    assert all(side % 64 == 0 for side in plan.output_size)


@pytest.mark.parametrize("policy", list(SizePolicy))
def test_every_policy_outputs_multiples_of_8_for_any_aspect(policy):
    for source in ((37, 91), (300, 120), (512, 512)):
        plan = plan_geometry(*source, policy, width=96, height=48)
        out = apply_geometry(torch.rand(2, *source, 3), plan)
        assert out.shape[1:3] == plan.output_size
        assert all(side % 8 == 0 for side in plan.output_size)


def test_frames_and_masks_get_identical_geometry():
    frames = torch.rand(2, 50, 70, 3, generator=torch.Generator().manual_seed(0))
    masks = frames[..., 0].clone()
    plan = plan_geometry(50, 70, "cover", 32, 32)
    torch.testing.assert_close(apply_geometry(masks, plan), apply_geometry(frames, plan)[..., 0], atol=1e-6, rtol=0)


def test_target_not_multiple_of_8_is_refused():
    with pytest.raises(InputError, match=r"width must be a positive multiple of 8.*got 100"):
        plan_geometry(64, 64, "cover", width=100, height=64)


def test_tensor_of_another_size_than_the_plan_is_refused():
    plan = plan_geometry(64, 64, "cover", 32, 32)
    with pytest.raises(InputError, match="compute a plan"):
        apply_geometry(torch.zeros(1, 32, 64, 3), plan)


def test_unknown_policy_is_refused():
    with pytest.raises(InputError, match="policy must be one of"):
        fit_to_size(torch.zeros(1, 8, 8, 3), "zoom")
