"""Bad values at the library's entry points: refused where they enter, naming the argument, before any work."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _support.sampling import sampler_inputs

from relightvid_core import TINY, RelightVidUNet
from relightvid_core.conditioning import env_map_plates, light_plate, tonemap
from relightvid_core.contact_sheet import write_image
from relightvid_core.demo import run_demo
from relightvid_core.errors import InputError
from relightvid_core.metrics import measure_files
from relightvid_core.model_files import pick_device
from relightvid_core.pipeline import EnvironmentMap, LightPreset, SamplingSettings, VideoJob
from relightvid_core.sampling import sample
from relightvid_core.video_io import read_video, write_video

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"text_scale": NAN}, "text_scale"),
        ({"text_scale": 1e30}, "text_scale"),
        ({"image_scale": -INF}, "image_scale"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -5}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"steps": 0}, "steps"),
        ({"steps": True}, "steps"),
        ({"scheduler": "magic"}, "scheduler"),
        ({"iie_factors": (1.0, NAN)}, "iie factor"),
        ({"iie_factors": ()}, "iie_factors"),
        ({"prompt": None}, "prompt"),
        ({"decode_chunk": 0}, "decode_chunk"),
    ],
    ids=str,
)
def test_sampling_settings_refuse_bad_values(settings, name):
    with pytest.raises(InputError, match=name):
        SamplingSettings(**settings)


@pytest.fixture(scope="module")
def tiny_unet():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return RelightVidUNet.from_config(TINY).eval()


def _unet_never_called(module, args, kwargs):
    raise AssertionError("the U-Net ran although an argument is bad")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"text_cfg": NAN}, "text_cfg"),
        ({"text_cfg": INF}, "text_cfg"),
        ({"img_cfg": 1e9}, "img_cfg"),
        ({"hdr_cfg": NAN}, "hdr_cfg"),
        ({"guidance_rescale": 2.0}, "guidance_rescale"),
    ],
    ids=str,
)
def test_sample_refuses_guidance_that_would_overflow(options, name, tiny_unet):
    inputs = sampler_inputs()
    handle = tiny_unet.register_forward_pre_hook(_unet_never_called, with_kwargs=True)
    try:
        with pytest.raises(InputError, match=name):
            sample(tiny_unet, **inputs, steps=2, **options)
    finally:
        handle.remove()


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"direction": INF}, "direction"),
        ({"direction": NAN}, "direction"),
        ({"end_direction": -INF}, "end_direction"),
        ({"intensity": NAN}, "intensity"),
        ({"intensity": 1e308}, "intensity"),
        ({"softness": NAN}, "softness"),
        ({"color": (1.0, NAN, 0.0)}, "color"),
    ],
    ids=str,
)
def test_light_settings_refuse_bad_values_at_construction_and_render(options, name):
    arguments = {"direction": "left", **options}
    with pytest.raises(InputError, match=name):
        LightPreset(**arguments)
    with pytest.raises(InputError, match=name):
        light_plate(arguments.pop("direction"), 2, 8, 8, **arguments)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"yaw": INF}, "yaw"),
        ({"yaw_speed": NAN}, "yaw_speed"),
        ({"pitch": NAN}, "pitch"),
        ({"fov": 0.0}, "fov"),
        ({"exposure": NAN}, "exposure"),
        ({"exposure": 5000.0}, "exposure"),
    ],
    ids=str,
)
def test_environment_map_settings_refuse_bad_values_before_reading_the_map(options, name, tmp_path):
    missing = tmp_path / "not_read.hdr"  # never opened: the numbers are checked first
    with pytest.raises(InputError, match=name):
        EnvironmentMap(missing, **options)
    with pytest.raises(InputError, match=name):
        env_map_plates(missing, 2, 8, 8, **options)


def test_tonemap_refuses_an_infinite_exposure():
    with pytest.raises(InputError, match="exposure"):
        tonemap(torch.ones(2, 2, 3), exposure=INF)


@pytest.mark.parametrize(("options", "name"), [({"max_frames": 0}, "max_frames"), ({"sheet_frames": 0}, "sheet_frames")])
def test_video_job_refuses_bad_counts(options, name, tmp_path):
    with pytest.raises(InputError, match=name):
        VideoJob(tmp_path / "in.mp4", None, LightPreset("left"), tmp_path / "out.mp4", **options)


def test_nan_frames_are_never_written_as_a_black_video(tmp_path):
    frames = torch.rand(2, 8, 8, 3)
    frames[1, 3, 3, 0] = NAN
    with pytest.raises(InputError, match="NaN"):
        write_video(tmp_path / "out.mp4", frames, 8.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.gif", "out.avi", "out"])
def test_the_video_writer_refuses_a_name_it_cannot_make(name, tmp_path):
    with pytest.raises(InputError, match=r"\.mp4"):
        write_video(tmp_path / name, torch.rand(2, 8, 8, 3), 8.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_the_video_writer_makes_the_container_its_name_says(suffix, tmp_path):
    path = write_video(tmp_path / f"out{suffix}", torch.rand(3, 8, 8, 3), 8.0)
    assert read_video(path)[0].shape == (3, 8, 8, 3)


def test_an_image_with_nan_is_never_written(tmp_path):
    image = np.full((4, 4, 3), 0.5, np.float32)
    image[0, 0, 0] = NAN
    with pytest.raises(InputError, match="NaN"):
        write_image(tmp_path / "sheet.png", image)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [("meta", "not one this tool runs on"), ("tpu", "not a torch device name"), ("cuda:x", "not a torch device name"), ("cuda:99", "cuda:99")],
)
def test_pick_device_refuses_devices_this_machine_lacks(name, needle):
    if name == "cuda:99" and not torch.cuda.is_available():
        needle = "no CUDA GPU"
    with pytest.raises(InputError, match=needle):
        pick_device(name)


def test_the_demo_refuses_a_file_as_its_folder(tmp_path):
    target = tmp_path / "demo"
    target.write_text("mine")
    with pytest.raises(InputError, match="is a file"):
        run_demo(target, steps=1)
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_the_demo_refuses_a_bad_seed_before_writing_anything(tmp_path):
    with pytest.raises(InputError, match="seed"):
        run_demo(tmp_path / "demo", seed=-1, steps=1)
    assert list(tmp_path.iterdir()) == []


def test_the_flow_clip_of_the_warp_error_is_fitted_to_a_resized_output(tmp_path):
    source = torch.rand(5, 48, 64, 3)
    write_video(tmp_path / "input.mp4", source, 8.0)
    write_video(tmp_path / "relit.mp4", source[:4, :, 8:56], 8.0)  # a 48x48 centre crop of 4 frames
    measured = measure_files(tmp_path / "relit.mp4", flow_from=tmp_path / "input.mp4", flow_fit="center_crop")
    assert measured.frames == 4 and math.isfinite(measured.warp_error)


def test_a_flow_clip_shorter_than_the_video_is_named_as_the_flow_clip(tmp_path):
    write_video(tmp_path / "input.mp4", torch.rand(2, 16, 16, 3), 8.0)
    write_video(tmp_path / "relit.mp4", torch.rand(4, 16, 16, 3), 8.0)
    with pytest.raises(InputError, match="flow clip") as caught:
        measure_files(tmp_path / "relit.mp4", flow_from=tmp_path / "input.mp4")
    assert "reference" not in str(caught.value)
