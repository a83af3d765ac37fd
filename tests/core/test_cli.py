"""The ``relightvid`` command end to end, in process, on tiny models and synthetic clips."""

from __future__ import annotations

import io
import json
import runpy
import sys
from pathlib import Path

import cv2
import huggingface_hub
import pytest
from _support.clips import CLIP_FPS, CLIP_FRAMES, CLIP_SIZE, write_clip
from huggingface_hub.utils import LocalEntryNotFoundError

from relightvid_core.cli import build_parser, main
from relightvid_core.options import mask_folder
from relightvid_core.model_files import ICLIGHT_NAME, MERGED_NAME, MOTION_NAME
from relightvid_core.video_io import read_video, write_video

TINY_RUN = [
    "--width",
    str(CLIP_SIZE),
    "--height",
    str(CLIP_SIZE),
    "--steps",
    "2",
    "--seed",
    "0",
    "--no-progress",
    "--no-download",
]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """``convert --tiny-demo``: tiny official-format files plus their merged U-Net, a complete models folder."""
    folder = tmp_path_factory.mktemp("models")
    assert main(["convert", "--tiny-demo", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip"))


def _relight(clip, models: Path, output: Path, *extra: str) -> int:
    args = ["relight", "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background)]
    return main([*args, "--output_path", str(output), "--models", str(models), *TINY_RUN, *extra])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("relightvid: error: "), err
    return err[0]


def test_official_flags_have_the_official_defaults():
    args = build_parser().parse_args(["relight"])
    assert str(args.input) == "assets/input/woman.mp4" and str(mask_folder(vars(args))) == "assets/mask/woman"
    assert str(args.bg_cond) == "assets/video_bg/universe1.mp4"
    assert str(args.output) == "output/woman_universe1.mp4"
    assert args.prompt == "change the background"
    assert (args.scheduler, args.steps, args.text_scale, args.image_scale) == ("ddpm", 20, 7.5, 1.2)
    assert (args.size_policy, args.width, args.height, args.iie) == ("center_crop", None, None, None)


def test_lighting_sources_are_mutually_exclusive(capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["relight", "--bg_cond", "a.mp4", "--light", "left"])
    assert caught.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_convert_tiny_demo_reports_what_it_wrote(tiny_models, capsys):
    assert (tiny_models / MERGED_NAME).is_file() and (tiny_models / MOTION_NAME).is_file()
    capsys.readouterr()
    assert main(["convert", "--tiny-demo", str(tiny_models), "--output", str(tiny_models / "again.safetensors")]) == 0
    out = capsys.readouterr().out
    assert ICLIGHT_NAME in out and "again.safetensors" in out and "float16" in out


def test_relight_writes_the_video_and_contact_sheet(tiny_models, clip, tmp_path, capsys):
    output, sheet = tmp_path / "relit.mp4", tmp_path / "sheet.png"
    assert _relight(clip, tiny_models, output, "--contact-sheet", str(sheet), "--iie", "0.8", "1.2") == 0
    frames, fps = read_video(output)
    assert frames.shape == (CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE, 3) and fps == pytest.approx(CLIP_FPS)
    assert cv2.imread(str(sheet)).shape[0] == 3 * CLIP_SIZE + 4
    out = capsys.readouterr().out
    assert f"wrote {output}" in out and "seed 0" in out and MERGED_NAME in out


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as tqdm asks before drawing."""

    def isatty(self) -> bool:
        return True


def _relight_with_bars(tiny_models, clip, tmp_path) -> list[str]:
    run = [arg for arg in TINY_RUN if arg != "--no-progress"]
    argv = ["relight", "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background)]
    output = tmp_path / "relit.mp4"
    assert main([*argv, "--output_path", str(output), "--models", str(tiny_models), *run, "--iie", "0.8", "1.2"]) == 0
    return argv


def test_relight_plans_and_shows_one_bar_at_a_time_on_a_terminal(tiny_models, clip, tmp_path, capsys, monkeypatch):
    """The plan line names the VAE's frames; on a terminal the VAE encode, sampling and VAE decode bars each
    run to their total, one after the other (never stacked: no cursor-up codes)."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _relight_with_bars(tiny_models, clip, tmp_path)
    out, err = capsys.readouterr().out, terminal.getvalue()
    encoded = CLIP_FRAMES * 3  # the background and two IIE foregrounds
    evaluations = 2 * (1 + 2 * 2)  # steps x (unconditional + 2 branches per IIE factor)
    assert f"the VAE encodes {encoded} frames" in out and f"decodes {CLIP_FRAMES} frames" in out
    finals = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.strip()]
    assert [line.split(":")[0] for line in finals] == ["VAE encode", "sampling", "VAE decode"]
    assert f"{encoded}/{encoded}" in finals[0] and f"{evaluations}/{evaluations}" in finals[1]
    assert f"{CLIP_FRAMES}/{CLIP_FRAMES}" in finals[2] and "step 2/2" in finals[1]
    assert "\x1b[" not in err


def test_relight_draws_no_bar_into_a_log_file(tiny_models, clip, tmp_path, capsys):
    """Output that is not a terminal (a log file, a pipe) gets the plan and result lines, no bar."""
    _relight_with_bars(tiny_models, clip, tmp_path)
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\x1b" not in captured.err and "%|" not in captured.err
    assert "the VAE encodes" in captured.out and "wrote " in captured.out


def test_relight_with_a_light_preset_and_max_frames(tiny_models, clip, tmp_path):
    output = tmp_path / "lit.mp4"
    argv = [
        "relight",
        "--input",
        str(clip.video),
        "--mask",
        str(clip.masks),
        "--light",
        "left",
        "--light-color",
        "1",
        "0.8",
        "0.6",
    ]
    assert main([*argv, "--output_path", str(output), "--models", str(tiny_models), "--frames", "4", *TINY_RUN]) == 0
    assert read_video(output)[0].shape[0] == 4


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_input", "does not exist"),
        ("unreadable_video", "not a video"),
        ("mask_count", "holds 5 masks"),
        ("output_under_a_file", "is a file, not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, expected, tiny_models, clip, tmp_path, capsys):
    inputs = write_clip(tmp_path / "clip")
    output = tmp_path / "out.mp4"
    if case == "missing_input":
        inputs.video.unlink()
    elif case == "unreadable_video":
        inputs.video.write_text("not a video")
    elif case == "mask_count":
        (inputs.masks / "0005.png").unlink()
    else:
        output = tmp_path / "a_file" / "out.mp4"
        (tmp_path / "a_file").write_text("")
    assert _relight(inputs, tiny_models, output) == 2
    assert expected in _one_error_line(capsys)
    assert not output.exists() and not [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]


def test_missing_weights_offline_lists_the_files(clip, tmp_path, monkeypatch, capsys):
    def offline(repo_id, filename, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the Hub and the file is not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    output = tmp_path / "out.mp4"
    argv = ["relight", "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background)]
    assert main([*argv, "--output_path", str(output), "--models", str(tmp_path / "models"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relightvid: error: ") and "offline?" in err
    for name in (ICLIGHT_NAME, MOTION_NAME, "realistic-vision-v51/unet/diffusion_pytorch_model.safetensors"):
        assert name in err
    assert "huggingface.co/aleafy/relightvid_models" in err and not output.exists()


def test_demo_writes_mp4_and_png(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", "--output", str(folder), "--steps", "1", "--no-progress"]) == 0
    frames, _ = read_video(folder / "relit.mp4")
    assert frames.shape[0] == 24 and (folder / "contact_sheet.png").is_file()
    out = capsys.readouterr().out
    assert "untrained" in out and str(folder / "relit.mp4") in out


def test_metrics_table_and_json(tmp_path, clip, capsys):
    assert main(["metrics", str(clip.video), "--reference", str(clip.video), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["psnr_db"] == "inf" and measured["ssim"] == pytest.approx(1.0) and measured["frames"] == CLIP_FRAMES
    assert main(["metrics", str(clip.video)]) == 0
    table = capsys.readouterr().out
    assert "warp error" in table and "flicker index" in table and "PSNR (dB)" in table


def test_metrics_refuses_mismatched_videos(tmp_path, clip, capsys):
    other = write_video(tmp_path / "short.mp4", read_video(clip.video)[0][:2], CLIP_FPS)
    assert main(["metrics", str(clip.video), "--reference", str(other)]) == 2
    assert "must match" in _one_error_line(capsys)


def test_python_dash_m_runs_the_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["relightvid", "--help"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("relightvid_core", run_name="__main__")
    assert caught.value.code == 0 and "relight" in capsys.readouterr().out


def test_smoke_on_the_official_assets(assets_dir, tiny_models, tmp_path):
    output = tmp_path / "lion.mp4"
    argv = [
        "relight",
        "--input", str(assets_dir / "input" / "lion.mp4"),
        "--mask", str(assets_dir / "mask" / "lion"),
        "--bg_cond", str(assets_dir / "video_bg" / "stage_light2.mp4"),
        "--output_path", str(output),
        "--models", str(tiny_models),
        "--size-policy", "cover",
    ]  # fmt: skip
    assert main([*argv, *TINY_RUN]) == 0
    frames, fps = read_video(output)
    assert frames.shape == (16, CLIP_SIZE, CLIP_SIZE, 3) and fps == pytest.approx(8.0)


def test_a_bar_without_a_plan_counts_steps_to_their_total(monkeypatch):
    """The demo's bar (no plan, no hooked network) knows its total and ends on it once."""
    from types import SimpleNamespace

    from relightvid_core.cli import _Progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = _Progress(True, steps=3)
    for index in range(3):
        progress(SimpleNamespace(index=index, total=3))
    progress.close()
    lines = [line for line in terminal.getvalue().split("\n") if line.strip()]
    assert len(lines) == 1 and lines[0].rsplit("\r", 1)[-1].startswith("sampling: 100%") and "3/3" in lines[0]


def test_convert_tiny_demo_suggests_a_relight_that_keeps_the_whole_clip(tmp_path, capsys):
    """The 64x64 run it suggests covers the frame (cover), so its contact sheet shows the whole clip, not a crop."""
    assert main(["convert", "--tiny-demo", str(tmp_path / "models")]) == 0
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    assert hint.startswith("try it: relightvid relight") and "--size-policy cover --width 64 --height 64" in hint


def test_counts_of_one_are_singular_in_the_plan_line():
    from relightvid_core.pipeline import JobPlan

    line = str(JobPlan(frames=1, width=64, height=64, steps=1, unet_evaluations=1, encoded_frames=1))
    assert line == (
        "1 frame at 64x64: the VAE encodes 1 frame, then 1 step of 1 U-Net evaluation in all, "
        "then the VAE decodes 1 frame"
    )
