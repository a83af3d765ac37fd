"""Apply RelightVid (native MODEL) in a real ComfyUI: the patched SD1.5 MODEL is RelightVid's U-Net.

Each test runs one check of ``native_model_checks.py`` in its own ComfyUI process (``COMFYUI_PYTHON``,
``--cpu``, in-process, no server) on the random full-size weights of weights.py: 8 frames of 8×8 latents,
computed in fp32 (weights stored in fp32 for the parity and low-VRAM checks, in fp16 elsewhere to halve the
memory).
Each check takes a few minutes and up to about 10 GB. Skipped without ``COMFYUI_PATH`` (conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from weights import CACHE, ensure_weights

CHECKS = Path(__file__).resolve().parent / "native_model_checks.py"
CHECK_TIMEOUT = 1800
EPS_ATOL = 1e-4  # one guidance branch against the library's RelightVidUNet, fp32
CFG = 3.0  # native_model_checks.CFG
# ε_neg + cfg·(ε_pos − ε_neg) adds the branch errors with weights cfg and cfg − 1.
GUIDED_ATOL = EPS_ATOL * (2 * CFG - 1)
LORA_ATOL = 1e-3
FRAMES = 8


@pytest.fixture(scope="module")
def run_check():
    ensure_weights()
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    env = {**os.environ, "RELIGHTVID_TEST_CACHE": str(CACHE)}

    def run(name: str) -> dict:
        done = subprocess.run(
            [python, str(CHECKS), name], env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT
        )
        assert done.returncode == 0, f"check {name} failed:\n{done.stderr[-6000:]}"
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"native check {name}: {result}")  # the measured figures, shown with pytest -s
        return result

    return run


def test_native_model_eps_matches_the_library_unet(run_check):
    result = run_check("parity")
    assert result["image_vs_zeros"] > 0.1, "the image condition must change the prediction"
    assert result["image"] < EPS_ATOL, result
    assert result["zeros"] < EPS_ATOL, result
    assert result["guided"] < GUIDED_ATOL, result


def test_native_model_lora_before_apply_equals_the_lora_baked_in(run_check):
    result = run_check("lora")
    assert result["lora_vs_plain"] > 10 * LORA_ATOL, "the LoRA must change the prediction"
    assert result["lora_vs_baked"] < LORA_ATOL, result


def test_native_model_controlnet_gives_frame_k_hint_k(run_check):
    result = run_check("controlnet")
    assert result["control_effect"] > 1e-3, "Apply ControlNet must change the prediction"
    assert result["hint_batch"] == FRAMES, result
    assert result["hint_k_to_frame_k"] == 0.0, result


def test_native_model_runs_on_fp8_weights(run_check):
    result = run_check("fp8")
    assert result["weight_dtype"] == "torch.float8_e4m3fn", result
    assert result["finite"] and result["shape"] == [FRAMES, 4, 8, 8], result
    # e4m3 keeps 3 mantissa bits: on random weights the prediction stays correlated with fp16's, not equal.
    assert result["cosine_to_fp16"] > 0.5, result


def test_native_model_leaves_the_input_model_untouched(run_check):
    result = run_check("identity")
    assert result["clone_is_new"], result
    assert result["changed"] == [], f"these parts of the input MODEL changed: {result['changed']}"
    assert result["eps_bit_identical"], "the input MODEL predicts differently after the patched clone ran"


def test_native_model_loaded_partially_predicts_as_loaded_whole(run_check):
    result = run_check("lowvram")
    partial, none = result["partial"], result["none"]
    assert partial["partially_loaded"] and 0 < partial["resident_mb"] < partial["model_mb"], partial
    assert partial["streamed_patches"] > 0 and partial["vs_whole"] < 1e-6, partial
    # nothing resident: every weight, the widened conv_in's included, is cast and patched per call
    assert none["partially_loaded"] and none["resident_mb"] == 0, none
    assert none["conv_in_patched_per_call"] and none["conv_in_stored_channels"] == 4, none
    assert none["vs_whole"] < 1e-6, none


def test_native_model_bad_inputs_say_why_in_one_sentence(run_check):
    messages = run_check("errors")
    assert "fc model" in messages["fc_file"] and "iclight_sd15_fbc" in messages["fc_file"], messages
    assert "temporal weights" in messages["motion_file"], messages
    assert "the latent has 8 frames but the RelightVid conditioning has 6" in messages["frames"], messages
    assert "the positive conditioning carries no RelightVid image" in messages["no_image"], messages
    for message in messages.values():
        assert message.count(". ") == 0 and "\n" not in message, message
