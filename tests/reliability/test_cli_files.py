"""Missing, unreadable, damaged or wrong files on the command line: one sentence each, nothing left behind."""

from __future__ import annotations

import builtins
import os
import socket

import av
import huggingface_hub
import numpy as np
import pytest
import torch
from _support.reliability import run_cli
from huggingface_hub.utils import LocalEntryNotFoundError
from safetensors.torch import load_file, save_file

from relightvid_core.model_files import ICLIGHT_NAME, MERGED_NAME, MOTION_NAME, SD_FOLDER
from relightvid_core.weights import files as weight_files


class CarriesCode:
    """Pickled by reference: loading it would call a function, which weights_only=True refuses."""

    def __reduce__(self):
        return (os.getcwd, ())


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def sd(workspace, part: str):
    return workspace.models / SD_FOLDER / part


DAMAGE = {
    "truncated text encoder": (lambda w: truncate(sd(w, "text_encoder/model.safetensors")), "truncated"),
    "text encoder pickle carrying code": (
        lambda w: (
            sd(w, "text_encoder/model.safetensors").unlink(),
            torch.save({"weight": CarriesCode()}, sd(w, "text_encoder/pytorch_model.bin")),
        ),
        "could run code",
    ),
    "text encoder config not JSON": (lambda w: sd(w, "text_encoder/config.json").write_text("{oops"), "not valid JSON"),
    "tokenizer vocab not JSON": (lambda w: sd(w, "tokenizer/vocab.json").write_text("not json"), "vocab.json"),
    "tokenizer merges not text": (lambda w: sd(w, "tokenizer/merges.txt").write_bytes(b"\xff\xfe\x00\x81"), "not a text file"),
    "truncated VAE": (lambda w: truncate(sd(w, "vae/diffusion_pytorch_model.safetensors")), "truncated"),
    "VAE config not JSON": (lambda w: sd(w, "vae/config.json").write_text("[1, 2"), "AutoencoderKL"),
    "VAE pickle carrying code": (
        lambda w: (
            sd(w, "vae/diffusion_pytorch_model.safetensors").unlink(),
            torch.save({"weight": CarriesCode()}, sd(w, "vae/diffusion_pytorch_model.bin")),
        ),
        "could run code",
    ),
    "truncated merged U-Net": (lambda w: truncate(w.models / MERGED_NAME), "truncated"),
    "pickle named .safetensors": (
        lambda w: torch.save({"x": torch.zeros(2)}, w.models / MERGED_NAME),
        "PyTorch checkpoint",
    ),
    "SDXL file as the merged U-Net": (
        lambda w: save_file({"conditioner.embedders.0.weight": torch.zeros(2)}, str(w.models / MERGED_NAME)),
        "SDXL",
    ),
    "merged U-Net without its config": (
        lambda w: save_file(load_file(str(w.models / MERGED_NAME)), str(w.models / MERGED_NAME)),
        "relightvid convert",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_model_files_are_named(case, workspace, refused):
    damage, needle = DAMAGE[case]
    damage(workspace)
    line = refused(workspace.relight_args(), needle)
    assert "config=" not in line or "from Python" in line


def test_an_unreadable_weight_file_is_not_called_truncated(workspace, refused, monkeypatch):
    merged = str(workspace.models / MERGED_NAME)

    def no_permission(path, *args, **kwargs):
        if str(path) == merged:
            raise PermissionError(13, "Permission denied", merged)
        return builtins.open(path, *args, **kwargs)

    # Tests run as root, whom permissions do not stop: the weight reader's open() is made to refuse.
    monkeypatch.setattr(weight_files, "open", no_permission, raising=False)
    line = refused(workspace.relight_args(), "cannot be read", "Permission denied")
    assert "truncated" not in line


def test_a_merged_path_that_is_a_folder_without_a_unet(workspace, refused):
    (workspace.root / "empty").mkdir()
    refused(workspace.relight_args("--merged", str(workspace.root / "empty")), "empty", "missing", listing=True)


def test_a_merged_path_that_does_not_exist(workspace, refused):
    refused(
        workspace.relight_args("--merged", str(workspace.root / "nowhere.safetensors")),
        "nowhere.safetensors",
        "you gave this path yourself",
        listing=True,
    )


def _official_files(workspace, motion_name: str) -> list[str]:
    models = workspace.models
    return ["--sd", str(models / SD_FOLDER), "--iclight", str(models / ICLIGHT_NAME), "--motion", str(models / motion_name)]


def test_a_temporal_file_its_keys_cannot_classify_is_refused_naming_the_option(workspace, refused):
    motion = torch.load(workspace.models / MOTION_NAME, weights_only=True)
    torch.save({key.removeprefix("unet."): value for key, value in motion.items()}, workspace.models / "mm.pth")
    refused(workspace.relight_args(*_official_files(workspace, "mm.pth")), "--motion-variant", "AnimateDiff v3")


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (truncate, "truncated"),
        (lambda path: torch.save({"unet.x": CarriesCode()}, path), "could run code"),
    ],
    ids=["truncated", "pickle carrying code"],
)
def test_a_damaged_temporal_file_is_named(damage, needle, workspace, refused):
    damage(workspace.models / MOTION_NAME)
    refused(workspace.relight_args(*_official_files(workspace, MOTION_NAME)), needle, MOTION_NAME)


def _replace_arg(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


INPUT_DAMAGE = {
    "missing video": ("--input", lambda w: w.clip.video.unlink(), "does not exist"),
    "video that is text": ("--input", lambda w: w.clip.video.write_text("not a video"), "not a video"),
    "video that is a folder": ("--input", lambda w: (w.clip.video.unlink(), w.clip.video.mkdir()), "not a file"),
    "missing mask folder": ("--mask", lambda w: [p.unlink() for p in w.clip.masks.iterdir()] and w.clip.masks.rmdir(), "mask folder"),
    "mask that is not an image": ("--mask", lambda w: (w.clip.masks / "0002.png").write_text("x"), "0002.png"),
    "mask of another size": (
        "--mask",
        lambda w: (w.clip.masks / "0003.png").write_bytes((w.root / "small.png").read_bytes()),
        "one size",
    ),
    "missing background": ("--bg_cond", lambda w: w.clip.background.unlink(), "does not exist"),
    "background that is text": ("--bg_cond", lambda w: w.clip.background.write_text("no"), "not a video"),
}


@pytest.mark.parametrize("case", list(INPUT_DAMAGE))
def test_damaged_inputs_are_named(case, workspace, refused):
    import cv2
    import numpy as np

    cv2.imwrite(str(workspace.root / "small.png"), np.zeros((8, 8), np.uint8))
    _, damage, needle = INPUT_DAMAGE[case]
    damage(workspace)
    refused(workspace.relight_args(), needle)


def test_an_unreadable_video_is_not_called_damaged(workspace, refused, monkeypatch):
    def no_permission(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(av, "open", no_permission)
    refused(workspace.relight_args(), "cannot be read", "permissions")


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "does not exist"), (b"#?RADIANCE\nnonsense", "not a Radiance")],
    ids=["missing", "not a map"],
)
def test_a_bad_environment_map_is_named(content, needle, workspace, refused):
    sky = workspace.root / "sky.hdr"
    if content is not None:
        sky.write_bytes(content)
    argv = workspace.relight_args("--hdr", str(sky))
    index = argv.index("--bg_cond")
    del argv[index : index + 2]
    refused(argv, needle)


def test_a_very_bright_map_at_the_extreme_exposures_is_relit(workspace, capsys):
    # Radiance of 1e30 times 2^30 overflows float32; it used to end as "img_cond contains NaN".
    cv2 = pytest.importorskip("cv2")
    sky = workspace.root / "sky.hdr"
    radiance = np.full((16, 32, 3), 0.5, np.float32)
    radiance[:, :8] = 1e30
    cv2.imwrite(str(sky), radiance)
    argv = workspace.relight_args("--hdr", str(sky))
    index = argv.index("--bg_cond")
    del argv[index : index + 2]
    for exposure in ("30", "-30"):
        outcome = run_cli([*argv, "--hdr-exposure", exposure], capsys)
        assert outcome.code == 0, (exposure, outcome.err)


@pytest.mark.parametrize(("name", "needle"), [("notes.txt", "Tele-typewriter"), ("still.mp4", "png")])
def test_a_file_that_is_not_a_video_is_refused_by_what_it_is(name, needle, workspace, refused):
    clip = workspace.clip.video.with_name(name)
    if name.endswith(".txt"):
        clip.write_text("notes about the shoot, not a clip\n" * 100)  # FFmpeg's tty demuxer would render it
    else:
        cv2 = pytest.importorskip("cv2")
        cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tofile(str(clip))
    refused(_replace_arg(workspace.relight_args(), "--input", str(clip)), str(clip), needle, "not a video")


def _downloading_args(workspace, models):
    argv = _replace_arg(workspace.relight_args(), "--models", str(models))
    argv.remove("--no-download")
    return argv


def test_offline_fails_fast_without_calling_the_hub_and_leaves_no_folder(workspace, refused, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    def forbidden(*args, **kwargs):
        raise AssertionError("the Hub client was called although the Hub cannot be reached")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)
    refused(_downloading_args(workspace, workspace.root / "new_models"), "offline?", "realistic-vision-v51", listing=True)


def test_a_failed_download_removes_the_hub_locks(workspace, refused, monkeypatch):
    from relightvid_core import model_files

    def lock_then_fail(repo_id, filename, *, local_dir, **kwargs):
        lock = os.path.join(local_dir, ".cache", "huggingface", "download", filename + ".lock")
        os.makedirs(os.path.dirname(lock), exist_ok=True)
        open(lock, "w").close()
        raise LocalEntryNotFoundError("connection dropped")

    monkeypatch.setattr(model_files, "_check_hub_reachable", lambda: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lock_then_fail)
    refused(_downloading_args(workspace, workspace.root / "new_models"), "offline?", listing=True)
