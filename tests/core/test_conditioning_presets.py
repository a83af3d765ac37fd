"""Light presets: each plate is brightest where its name says; sweeps move the light; bad options are refused."""

from __future__ import annotations

import pytest
import torch

from relightvid_core.conditioning import LIGHT_DIRECTIONS, light_plate
from relightvid_core.errors import InputError

# Region → (rows, columns) slices of a 32x48 plate, by name part.
REGIONS = {
    "left": (slice(None), slice(0, 12)),
    "right": (slice(None), slice(36, 48)),
    "top": (slice(0, 8), slice(None)),
    "bottom": (slice(24, 32), slice(None)),
    "top_left": (slice(0, 8), slice(0, 12)),
    "top_right": (slice(0, 8), slice(36, 48)),
    "bottom_left": (slice(24, 32), slice(0, 12)),
    "bottom_right": (slice(24, 32), slice(36, 48)),
}


def _brightest_region(plate_hw: torch.Tensor, candidates) -> str:
    return max(candidates, key=lambda name: float(plate_hw[REGIONS[name]].mean()))


SIDES = ("left", "right", "top", "bottom")
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
OPPOSITE = {"left": "right", "top": "bottom", "top_left": "bottom_right", "top_right": "bottom_left"}
OPPOSITE.update({value: key for key, value in OPPOSITE.items()})


@pytest.mark.parametrize("direction", list(LIGHT_DIRECTIONS))
def test_preset_is_brightest_on_its_named_side(direction):
    plate = light_plate(direction, 1, 32, 48)
    assert plate.shape == (1, 32, 48, 3) and 0.0 <= float(plate.min()) and float(plate.max()) <= 1.0
    candidates = SIDES if direction in SIDES else CORNERS
    means = {name: float(plate[0, :, :, 0][REGIONS[name]].mean()) for name in candidates}
    assert max(means, key=means.get) == direction and min(means, key=means.get) == OPPOSITE[direction]
    assert means[direction] > means[OPPOSITE[direction]] + 0.5


def test_ambient_is_uniform_in_the_given_colour():
    plate = light_plate("ambient", 2, 8, 8, color=(1.0, 0.5, 0.0), intensity=0.8)
    assert torch.allclose(plate, torch.tensor([0.8, 0.4, 0.0]).expand(2, 8, 8, 3))


def test_softness_darkens_the_far_side():
    soft = light_plate("left", 1, 8, 64, softness=1.0)[0, 0, :, 0]
    hard = light_plate("left", 1, 8, 64, softness=0.25)[0, 0, :, 0]
    assert float(hard[0]) == pytest.approx(float(soft[0]), abs=0.05) and hard[40:].max() == 0.0 and soft[40] > 0.0


def test_sweep_moves_the_light_from_left_to_top():
    plates = light_plate("left", 5, 32, 48, end_direction="top")
    assert _brightest_region(plates[0, :, :, 0], SIDES) == "left"
    assert _brightest_region(plates[2, :, :, 0], CORNERS) == "top_left"
    assert _brightest_region(plates[4, :, :, 0], SIDES) == "top"


def test_angle_sweep_takes_angles_literally():
    plates = light_plate(0.0, 5, 32, 48, end_direction=360.0)
    torch.testing.assert_close(plates[0], plates[4], atol=1e-5, rtol=0)
    assert _brightest_region(plates[2, :, :, 0], SIDES) == "left"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "north"}, "direction must be one of"),
        ({"softness": 0.0}, "softness must be in"),
        ({"color": (2.0, 0.0, 0.0)}, "color must be three RGB values"),
        ({"direction": "ambient", "end_direction": "left"}, "ambient light has no direction"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    arguments = {"direction": "left", **kwargs}
    with pytest.raises(InputError, match=message):
        light_plate(arguments.pop("direction"), 2, 8, 8, **arguments)
