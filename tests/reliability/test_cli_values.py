"""Bad numbers and names on the command line: refused where they enter, naming the option, before any work."""

from __future__ import annotations

import pytest
import torch

SEED_TOO_BIG = str(2**64)

# (extra arguments, what the one error line must name)
RELIGHT_CASES = [
    (["--text-scale", "nan"], "--text-scale"),
    (["--text-scale", "inf"], "--text-scale"),
    (["--text-scale", "1e6"], "--text-scale"),
    (["--text-scale", "-1"], "--text-scale"),
    (["--image-scale", "nan"], "--image-scale"),
    (["--image-scale", "1e300"], "--image-scale"),
    (["--image-scale", "ten"], "--image-scale"),
    (["--seed", SEED_TOO_BIG], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["--steps", "0"], "--steps"),
    (["--steps", "1001"], "--steps"),
    (["--width", "0"], "--width"),
    (["--width", "100000"], "--width"),
    (["--width", "60"], "width"),
    (["--height", "-8"], "--height"),
    (["--frames", "0"], "--frames"),
    (["--window", "33"], "--window"),
    (["--window", "0"], "--window"),
    (["--overlap", "16"], "--overlap must be less than the window length (16)"),
    (["--overlap", "-1"], "--overlap"),
    (["--iie", "nan"], "--iie"),
    (["--iie", "0"], "--iie"),
    (["--iie", "1", "-1"], "--iie"),
    (["--sheet-frames", "0"], "--sheet-frames"),
    (["--sheet-frames", "1000"], "--sheet-frames"),
    (["--scheduler", "magic"], "--scheduler"),
    (["--dtype", "fp8"], "--dtype"),
    (["--device", "tpu"], "tpu"),
    (["--device", "cuda:x"], "cuda:x"),
    (["--size-policy", "zoom"], "--size-policy"),
    (["--motion-variant", "v4"], "--motion-variant"),
]
# Options of the other lighting sources (they replace --bg_cond).
LIGHT_CASES = [
    (["--light", "inf"], "--light"),
    (["--light", "nan"], "--light"),
    (["--light", "north"], "--light"),
    (["--light", "left", "--light-end", "-inf"], "--light-end"),
    (["--light", "left", "--light-intensity", "nan"], "--light-intensity"),
    (["--light", "left", "--light-intensity", "-1"], "--light-intensity"),
    (["--light", "left", "--light-softness", "0"], "--light-softness"),
    (["--light", "left", "--light-color", "1", "nan", "0"], "--light-color"),
    (["--light", "left", "--light-color", "2", "0", "0"], "--light-color"),
    (["--light", "ambient", "--light-end", "left"], "ambient"),
    (["--hdr", "sky.hdr", "--hdr-yaw", "inf"], "--hdr-yaw"),
    (["--hdr", "sky.hdr", "--hdr-yaw-speed", "nan"], "--hdr-yaw-speed"),
    (["--hdr", "sky.hdr", "--hdr-pitch", "91"], "--hdr-pitch"),
    (["--hdr", "sky.hdr", "--hdr-fov", "180"], "--hdr-fov"),
    (["--hdr", "sky.hdr", "--hdr-exposure", "nan"], "--hdr-exposure"),
    (["--hdr", "sky.hdr", "--hdr-exposure", "1e9"], "--hdr-exposure"),
]


@pytest.mark.parametrize(("extra", "name"), RELIGHT_CASES, ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_relight_refuses_bad_values(extra, name, workspace, refused):
    refused(workspace.relight_args(*extra), name)


@pytest.mark.parametrize(("extra", "name"), LIGHT_CASES, ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_lighting_options_refuse_bad_values(extra, name, workspace, refused):
    argv = [arg for arg in workspace.relight_args(*extra)]
    # --bg_cond and the other lighting sources exclude each other: drop it.
    index = argv.index("--bg_cond")
    del argv[index : index + 2]
    refused(argv, name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_cuda_device_without_cuda_is_refused_before_reading_the_clip(workspace, refused):
    line = refused(workspace.relight_args("--device", "cuda"), "cuda", "--device cpu")
    assert "does not exist" not in line


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["demo", "--seed", "-1"], "--seed"),
        (["demo", "--seed", SEED_TOO_BIG], "--seed"),
        (["demo", "--steps", "0"], "--steps"),
        (["demo", "--steps", "many"], "--steps"),
        (["convert", "--dtype", "fp64"], "--dtype"),
        (["metrics", "a.mp4", "--flow-fit", "zoom"], "--flow-fit"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_other_commands_refuse_bad_values(argv, name, workspace, refused, monkeypatch):
    monkeypatch.chdir(workspace.out)  # the demo's default folder would land here
    refused(argv, name)


def test_a_missing_mask_is_never_taken_from_another_clip(workspace, refused):
    argv = workspace.relight_args()
    index = argv.index("--mask")
    del argv[index : index + 2]
    refused(argv, "--mask is required", "woman")
