"""Environment maps: reading .hdr/.exr, clamping bad values, tone mapping, and where the camera puts a bright spot."""

from __future__ import annotations

import math

import cv2
import numpy as np
import OpenEXR
import pytest
import torch

from relightvid_core.conditioning import env_map_panoramas, env_map_plates, read_env_map, tonemap
from relightvid_core.errors import InputError
from relightvid_core.values import EXPOSURE_STOPS

FOV = 60.0


def _write_exr(path, rgb: np.ndarray) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"RGB": rgb.astype(np.float32)}).write(str(path))


def _spot_map(row: int, col: int, height: int = 64, width: int = 128) -> torch.Tensor:
    env = torch.zeros(height, width, 3)
    env[row, col] = 50.0
    return env


def _spot_angles(row: int, col: int, height: int = 64, width: int = 128) -> tuple[float, float]:
    """Longitude and latitude (degrees) of a texel centre, per the documented equirect convention."""
    return ((col + 0.5) / width - 0.5) * 360.0, (0.5 - (row + 0.5) / height) * 180.0


def _argmax_yx(plate: torch.Tensor) -> tuple[int, int]:
    return divmod(int(plate[..., 0].argmax()), plate.shape[1])


def test_read_hdr_round_trip_in_rgb_order(tmp_path):
    rgb = np.zeros((8, 16, 3), np.float32)
    rgb[2, 3] = (4.0, 0.5, 0.25)
    cv2.imwrite(str(tmp_path / "map.hdr"), rgb[:, :, ::-1].copy())
    env = read_env_map(tmp_path / "map.hdr")
    assert env.shape == (8, 16, 3) and env.dtype == torch.float32
    np.testing.assert_allclose(env[2, 3].numpy(), [4.0, 0.5, 0.25], rtol=0.02)


def test_read_exr_round_trip_exact(tmp_path):
    rgb = np.random.default_rng(0).random((8, 16, 3), dtype=np.float32) * 20
    _write_exr(tmp_path / "map.exr", rgb)
    np.testing.assert_array_equal(read_env_map(tmp_path / "map.exr").numpy(), rgb)


def test_exr_inf_and_nan_are_clamped_with_a_warning(tmp_path):
    rgb = np.ones((8, 16, 3), np.float32)
    rgb[0, 0, 0], rgb[0, 1, 1], rgb[1, 1] = np.inf, np.nan, 7.0
    _write_exr(tmp_path / "bad.exr", rgb)
    with pytest.warns(RuntimeWarning, match="inf/NaN"):
        env = read_env_map(tmp_path / "bad.exr")
    assert torch.isfinite(env).all() and env[0, 0, 0] == 7.0 and env[0, 1, 1] == 0.0


def test_hdr_inf_and_nan_are_clamped_with_a_warning(tmp_path, monkeypatch):
    # RGBE files cannot store inf/NaN, so the decoder is made to return them, as a damaged file could.
    cv2.imwrite(str(tmp_path / "bad.hdr"), np.ones((4, 8, 3), np.float32))
    decoded = np.ones((4, 8, 3), np.float32)
    decoded[0, 0] = (np.inf, np.nan, 2.0)
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: decoded.copy())  # hdr imports cv2 where it reads
    with pytest.warns(RuntimeWarning, match="2 inf/NaN values"):
        env = read_env_map(tmp_path / "bad.hdr")
    assert torch.isfinite(env).all()


@pytest.mark.parametrize("name", ["fake.hdr", "fake.exr", "picture.png"])
def test_a_file_that_is_not_a_map_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image")
    with pytest.raises(InputError, match="picture.png is not an environment map|fake"):
        read_env_map(tmp_path / name)


def test_missing_map_is_refused_naming_the_path(tmp_path):
    with pytest.raises(InputError, match="nothing.exr does not exist"):
        read_env_map(tmp_path / "nothing.exr")


def test_tonemap_operators_exposure_and_gamma():
    one = torch.ones(1)
    assert float(tonemap(one, gamma=1.0)) == pytest.approx(0.5)
    assert float(tonemap(one)) == pytest.approx(0.5 ** (1 / 2.2))
    assert float(tonemap(one, exposure=1.0, operator="clip", gamma=1.0)) == 1.0
    assert float(tonemap(one * 0.25, exposure=1.0, operator="clip", gamma=1.0)) == pytest.approx(0.5)
    with pytest.raises(InputError, match="operator must be one of"):
        tonemap(one, operator="filmic")


def test_camera_looking_at_the_spot_sees_it_at_the_centre():
    row, col = 20, 85
    longitude, latitude = _spot_angles(row, col)
    plates = env_map_plates(_spot_map(row, col), 1, 33, 33, yaw=longitude, pitch=latitude, fov=FOV)
    assert plates.shape == (1, 33, 33, 3)
    assert _argmax_yx(plates[0]) == (16, 16)


def test_spot_lands_where_the_pinhole_projection_says():
    row, col = 26, 70  # right of and above the map centre
    longitude, latitude = _spot_angles(row, col)
    height, width = 48, 64
    focal = (width / 2) / math.tan(math.radians(FOV / 2))
    expected_x = width / 2 - 0.5 + focal * math.tan(math.radians(longitude))
    expected_y = height / 2 - 0.5 - focal * math.tan(math.radians(latitude)) / math.cos(math.radians(longitude))
    y, x = _argmax_yx(env_map_plates(_spot_map(row, col), 1, height, width, fov=FOV)[0])
    assert abs(x - expected_x) <= 1.0 and abs(y - expected_y) <= 1.0
    assert x > width / 2 and y < height / 2  # positive longitude is right, positive latitude is up


def test_positive_yaw_turns_right_and_yaw_speed_pans_over_frames():
    row, col = 31, 68
    plates = env_map_plates(_spot_map(row, col), 3, 33, 65, yaw=0.0, yaw_speed=2.0, fov=FOV)
    columns = [_argmax_yx(plate)[1] for plate in plates]
    assert columns[0] > columns[1] > columns[2]  # turning right moves the scene left on screen


def test_sampling_wraps_across_the_seam():
    # The spot sits in the map's last column; the camera looks at the first column's centre, just across
    # the ±180° seam, so the spot must appear a little left of the image centre.
    longitude, latitude = _spot_angles(31, 0)
    plate = env_map_plates(_spot_map(31, 127), 1, 33, 33, yaw=longitude, pitch=latitude, fov=FOV)[0]
    focal = 16.5 / math.tan(math.radians(FOV / 2))
    expected_x = 16 - focal * math.tan(math.radians(360.0 / 128))
    y, x = _argmax_yx(plate)
    assert y == 16 and abs(x - expected_x) <= 1.0 and float(plate.max()) > 0.5


def test_panoramas_turn_with_the_camera():
    col = 96  # longitude +90°
    panoramas = env_map_panoramas(_spot_map(32, col), 2, 32, 64, yaw=90.0, yaw_speed=-90.0)
    assert panoramas.shape == (2, 32, 64, 3)
    assert abs(_argmax_yx(panoramas[0])[1] - 31.5) <= 1 and abs(_argmax_yx(panoramas[1])[1] - 47.5) <= 1


def test_env_map_plates_clamps_a_bad_tensor_with_a_warning():
    env = torch.ones(8, 16, 3)
    env[0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="1 inf/NaN"):
        plates = env_map_plates(env, 1, 8, 8)
    assert torch.isfinite(plates).all()


def test_env_map_plates_accepts_a_path_and_refuses_bad_fov(tmp_path):
    _write_exr(tmp_path / "map.exr", np.ones((8, 16, 3), np.float32))
    plates = env_map_plates(tmp_path / "map.exr", 2, 8, 8, operator="clip", gamma=1.0)
    assert torch.allclose(plates, torch.ones(2, 8, 8, 3))
    with pytest.raises(InputError, match="fov must be in"):
        env_map_plates(tmp_path / "map.exr", 1, 8, 8, fov=180.0)


def _bright_map() -> torch.Tensor:
    """A map with texels from dark to the brightest a Radiance/EXR float can hold, and a gradient between."""
    env = torch.linspace(0.0, 1.0, 64 * 128 * 3).reshape(64, 128, 3) * 100.0
    env[8:16, 20:40] = 1e30  # × 2^30 overflows float32
    env[40:48, 80:100] = torch.finfo(torch.float32).max  # overflows as soon as two are summed
    return env


@pytest.mark.parametrize("operator", ["reinhard", "clip"])
@pytest.mark.parametrize("exposure", [EXPOSURE_STOPS, -EXPOSURE_STOPS, 0.0])
def test_every_exposure_in_range_gives_finite_plates_on_any_map(exposure, operator):
    env = _bright_map()
    for plates in (
        # Both sizes shrink the 128-texel-wide map first (area averaging), then interpolate it.
        env_map_plates(env, 2, 8, 16, fov=90.0, yaw_speed=30.0, exposure=exposure, operator=operator),
        env_map_panoramas(env, 2, 16, 32, exposure=exposure, operator=operator),
    ):
        assert torch.isfinite(plates).all() and plates.min() >= 0.0 and plates.max() <= 1.0


def test_a_huge_exposure_saturates_and_a_very_negative_one_darkens():
    env = torch.full((16, 32, 3), 0.5)
    env[:, :8] = 1e30
    assert torch.equal(env_map_panoramas(env, 1, 16, 32, exposure=EXPOSURE_STOPS), torch.ones(1, 16, 32, 3))
    dark = env_map_panoramas(env, 1, 16, 32, exposure=-EXPOSURE_STOPS, gamma=1.0)
    assert torch.equal(dark[0, :, :4], torch.ones(16, 4, 3))  # 1e30 · 2^-30 is still far past white
    assert 0.0 < float(dark[0, :, 16:].max()) < 1e-9  # 0.5 · 2^-30: dark, yet not lost


def test_tonemap_of_overflowing_radiance_is_exact_saturation():
    # Clamping before the scaling changes nothing below the overflow: x/(1+x) is already 1 in float32 there.
    radiance = torch.tensor([1e30, torch.finfo(torch.float32).max, 2.0**25, 1.0])
    out = tonemap(radiance, exposure=EXPOSURE_STOPS, gamma=1.0)
    assert out.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert tonemap(torch.tensor([3.0]), exposure=-2.0, gamma=1.0).item() == pytest.approx(0.75 / 1.75)
