"""The end-to-end pipeline on tiny seeded components: geometry, lighting sources, IIE, windows, files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from _support.clips import CLIP_FPS, CLIP_FRAMES, CLIP_SIZE, write_clip
from _support.sampling import UNetSpy
from safetensors.torch import load_file

from relightvid_core.conditioning import read_official_clip
from relightvid_core.contact_sheet import contact_sheet, sheet_indices, write_image
from relightvid_core.demo import procedural_background, procedural_clip, tiny_components
from relightvid_core.errors import InputError
from relightvid_core.pipeline import (
    BackgroundFile,
    BackgroundFrames,
    EnvironmentMap,
    LightPreset,
    PreparedClip,
    SamplingSettings,
    VideoJob,
    prepare_clip,
    relight_clip,
    run_video_job,
)
from relightvid_core.sampling import ContextWindows
from relightvid_core.vae import SD_LATENT_SCALE
from relightvid_core.video_io import read_video

FAST = SamplingSettings(steps=2, seed=3)


@pytest.fixture(scope="module")
def components():
    return tiny_components(seed=0)


@pytest.fixture(scope="module")
def clip() -> PreparedClip:
    frames, masks = procedural_clip(4, CLIP_SIZE)
    return PreparedClip(frames, masks, procedural_background(4, CLIP_SIZE))


def _no_components():
    raise AssertionError("components were loaded although the inputs are bad")


def test_prepare_clip_applies_one_plan_to_frames_and_masks():
    frames = torch.rand(3, 80, 96, 3)
    masks = torch.zeros(3, 80, 96)
    masks[:, 40, 48] = 1.0  # one marked pixel, near the centre
    prepared = prepare_clip(frames, masks, LightPreset("left"), "center_crop", 64, 64)
    assert prepared.size == (64, 64) and prepared.background.shape == (3, 64, 64, 3)
    # Centre crop 96x80 → 64x64 removes 16 columns and 8 rows on the left/top.
    assert prepared.masks[0, 32, 32] == 1.0 and prepared.masks.sum() == 3
    assert torch.equal(prepared.frames[:, 32, 32], frames[:, 40, 48])
    assert prepared.background[0, 32, 0].sum() > prepared.background[0, 32, -1].sum()  # lit from the left


def test_prepare_clip_refuses_masks_of_another_size():
    with pytest.raises(InputError, match=r"one \(H, W\) mask per frame.*\(2, 32, 32\)"):
        prepare_clip(torch.rand(2, 48, 48, 3), torch.ones(2, 32, 32), BackgroundFrames(None))


def test_lighting_sources_render_at_the_output_size(tmp_path):
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((30, 40, 3), 200, np.uint8))
    plates = BackgroundFile(still).render(3, 16, 24)
    assert plates.shape == (3, 16, 24, 3) and torch.allclose(plates, torch.full_like(plates, 200 / 255))
    env = tmp_path / "sky.hdr"
    radiance = np.zeros((16, 32, 3), np.float32)
    radiance[:8] = 4.0  # bright upper hemisphere
    cv2.imwrite(str(env), radiance)
    plates = EnvironmentMap(env, pitch=30.0).render(2, 16, 16)
    assert plates.shape == (2, 16, 16, 3) and plates[0, 0].mean() > plates[0, -1].mean()


def test_relight_clip_is_seeded_and_keeps_shape(components, clip):
    first = relight_clip(components, clip, FAST)
    again = relight_clip(components, clip, FAST)
    assert first.frames.shape == (4, CLIP_SIZE, CLIP_SIZE, 3) and first.seed == FAST.seed
    assert 0.0 <= float(first.frames.min()) and float(first.frames.max()) <= 1.0
    assert torch.equal(first.frames, again.frames)


def test_relight_clip_draws_and_reports_a_seed(components, clip):
    result = relight_clip(components, clip, SamplingSettings(steps=1))
    assert isinstance(result.seed, int) and result.seed >= 0


def test_iie_members_and_windows_reach_the_unet(components):
    frames, masks = procedural_clip(20, CLIP_SIZE)
    clip = PreparedClip(frames, masks, procedural_background(20, CLIP_SIZE))
    settings = SamplingSettings(steps=1, seed=0, iie_factors=(0.5, 1.0, 1.5), window=ContextWindows(16, 4))
    with UNetSpy(components.unet) as spy:
        relight_clip(components, clip, settings)
    # 20 frames in windows of 16 / overlap 4: two windows; uncond + 2 branches per IIE factor = 7 items
    # each, in CPU calls of at most 3.
    assert spy.batch_sizes() == [3, 3, 1, 3, 3, 1]
    assert all(call.sample.shape[2] == 16 for call in spy.calls)


def test_run_video_job_writes_video_at_the_input_rate(tmp_path, components):
    files = write_clip(tmp_path)
    job = VideoJob(
        input=files.video,
        mask=files.masks,
        lighting=BackgroundFile(files.background),
        output=tmp_path / "out.mp4",
        contact_sheet=tmp_path / "sheet.png",
        width=CLIP_SIZE,
        height=CLIP_SIZE,
    )
    steps = []
    result = run_video_job(job, FAST, lambda: components, callback=steps.append)
    video, fps = read_video(result.output)
    assert video.shape == (CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE, 3) and fps == pytest.approx(CLIP_FPS)
    assert [info.index for info in steps] == [0, 1]
    sheet = cv2.imread(str(result.contact_sheet))
    assert sheet is not None and sheet.shape[0] == 3 * CLIP_SIZE + 2 * 2  # three rows, two gaps


def test_run_video_job_checks_inputs_before_loading_models(tmp_path):
    files = write_clip(tmp_path)
    (files.masks / "0000.png").unlink()
    job = VideoJob(
        files.video,
        files.masks,
        BackgroundFile(files.background),
        tmp_path / "out.mp4",
        width=CLIP_SIZE,
        height=CLIP_SIZE,
    )
    with pytest.raises(InputError, match="masks"):
        run_video_job(job, FAST, _no_components)
    assert not (tmp_path / "out.mp4").exists()


def test_run_video_job_refuses_an_output_under_a_file(tmp_path):
    files = write_clip(tmp_path)
    job = VideoJob(files.video, files.masks, BackgroundFile(files.background), files.video / "out.mp4")
    with pytest.raises(InputError, match="is a file, not a folder"):
        run_video_job(job, FAST, _no_components)


def test_contact_sheet_layout():
    assert sheet_indices(16, 4) == [0, 5, 10, 15]
    assert sheet_indices(3, 4) == [0, 1, 2]
    rows = [torch.full((6, 8, 10, 3), value) for value in (0.0, 0.5, 1.0)]
    sheet = contact_sheet(rows, columns=3)
    assert sheet.shape == (3 * 8 + 2 * 2, 3 * 10 + 2 * 2, 3)
    assert sheet[0, 0, 0] == 0.0 and sheet[-1, -1, 0] == 1.0
    labelled = contact_sheet(rows, columns=3, labels=["input", "background", "output"])
    assert labelled.shape[0] == sheet.shape[0] and labelled.shape[1] > sheet.shape[1]
    with pytest.raises(InputError, match="one shape"):
        contact_sheet([rows[0], rows[1][:2]])


def test_write_image_is_atomic_and_creates_missing_folders(tmp_path):
    image = np.zeros((4, 4, 3), np.float32)
    write_image(tmp_path / "a.png", image)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    write_image(tmp_path / "missing" / "deeper" / "a.png", image)
    assert [p.name for p in (tmp_path / "missing" / "deeper").iterdir()] == ["a.png"]


@pytest.mark.parametrize(("name", "needle"), [("file/a.png", "is a file"), ("a.gif", "must end in"), ("a", "no suffix")])
def test_write_image_refuses_a_destination_it_cannot_write(name, needle, tmp_path):
    (tmp_path / "file").write_text("in the way of a folder")
    with pytest.raises(InputError, match=needle):
        write_image(tmp_path / name, np.zeros((4, 4, 3), np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_run_video_job_writes_the_sampled_latents_as_a_comfyui_latent_file(tmp_path, components):
    files = write_clip(tmp_path)
    lighting = BackgroundFile(files.background)
    job = VideoJob(files.video, files.masks, lighting, tmp_path / "out.mp4", latent=tmp_path / "out.latent",
                   width=CLIP_SIZE, height=CLIP_SIZE)  # fmt: skip
    result = run_video_job(job, FAST, lambda: components)
    saved = load_file(result.latent)
    # Save Latent's format: the LATENT's samples, unscaled, and the marker that says so to Load Latent.
    assert set(saved) == {"latent_tensor", "latent_format_version_0"} and saved["latent_format_version_0"].numel() == 0
    official = read_official_clip(files.video, files.masks)
    clip = prepare_clip(official.frames, official.masks, lighting, job.size_policy, CLIP_SIZE, CLIP_SIZE)
    expected = relight_clip(components, clip, FAST).latents / SD_LATENT_SCALE
    assert saved["latent_tensor"].dtype == torch.float32 and saved["latent_tensor"].shape == (CLIP_FRAMES, 4, 8, 8)
    torch.testing.assert_close(saved["latent_tensor"], expected, atol=0, rtol=0)
