"""Background fitting: length policies as index sequences, stills, flips, no background, other aspect ratios."""

from __future__ import annotations

import pytest
import torch

from relightvid_core.conditioning import background_indices, fit_background, no_background
from relightvid_core.errors import InputError


@pytest.mark.parametrize(
    ("policy", "source", "count", "expected"),
    [
        ("loop", 3, 7, [0, 1, 2, 0, 1, 2, 0]),
        ("ping_pong", 3, 7, [0, 1, 2, 1, 0, 1, 2]),
        ("ping_pong", 2, 5, [0, 1, 0, 1, 0]),
        ("hold", 3, 5, [0, 1, 2, 2, 2]),
        ("trim", 5, 3, [0, 1, 2]),
        ("stretch", 3, 5, [0, 0, 1, 2, 2]),  # round(i/2): Python rounds halves to even
        ("stretch", 9, 3, [0, 4, 8]),
        ("loop", 5, 3, [0, 1, 2]),
        ("stretch", 4, 1, [0]),
    ],
)
def test_background_indices(policy, source, count, expected):
    assert background_indices(source, count, policy) == expected


@pytest.mark.parametrize("policy", ["loop", "ping_pong", "hold", "trim", "stretch"])
def test_a_still_repeats_under_every_policy(policy):
    assert background_indices(1, 4, policy) == [0, 0, 0, 0]


def test_trim_of_a_shorter_background_names_both_counts():
    with pytest.raises(InputError, match=r"background has 3 frames but the foreground has 5"):
        background_indices(3, 5, "trim")


def test_zero_frame_background_is_refused():
    with pytest.raises(InputError, match="at least 1 frame"):
        fit_background(torch.zeros(0, 8, 8, 3), 4, 8, 8)


def test_fit_background_gathers_frames_in_policy_order():
    frames = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 16, 16, 3) / 10
    out = fit_background(frames, 5, 16, 16, length="ping_pong")
    assert out[:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.1, 0.0])


def test_other_aspect_ratio_is_fitted_not_refused():
    wide = torch.rand(2, 30, 90, 3, generator=torch.Generator().manual_seed(0))
    for policy in ("cover", "contain", "center_crop", "stretch"):
        assert fit_background(wide, 4, 32, 48, size_policy=policy).shape == (4, 32, 48, 3)


def test_flip_mirrors_left_right():
    frames = torch.zeros(1, 8, 8, 3)
    frames[:, :, 0] = 1.0
    out = fit_background(frames, 2, 8, 8, flip=True)
    assert torch.all(out[:, :, 7] == 1.0) and torch.all(out[:, :, 0] == 0.0)


def test_no_background_is_black_frames():
    assert torch.equal(fit_background(None, 3, 16, 24), torch.zeros(3, 16, 24, 3))
    assert torch.equal(no_background(2, 8, 8), torch.zeros(2, 8, 8, 3))


def test_unknown_length_policy_is_refused():
    with pytest.raises(InputError, match="length policy must be one of"):
        background_indices(3, 4, "bounce")
