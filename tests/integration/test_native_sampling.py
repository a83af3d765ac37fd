"""The native path (Apply RelightVid + ComfyUI's own samplers) in a real ComfyUI on the CPU, random full-size weights.

In-process checks (one ComfyUI process, no server; tests/integration/native_inprocess.py) on the gentle random
weights (weights.py): sampling parity with the library and with ``relightvid relight`` (run here, in this
environment, on the same checkpoint as a diffusers folder), the IIE guider, KSampler runs, long clips in windows.
Server checks (the usual random weights): the native
templates queue and run, show progress, and stop on Cancel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _support.clips import write_clip
from harness import EventStream, comfyui_path
from weights import CHECKPOINT, GENTLE, GENTLE_STD, ICLIGHT, MOTION, ensure_diffusers_folder, ensure_weights

from relightvid_core import load_relightvid_unet, sample

HERE = Path(__file__).resolve().parent
PARITY_ATOL = 1e-3  # the bar for "equal" (issue: the same seed gives latents within 1e-3)
IN_PROCESS_TIMEOUT = 3600
RUN_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    comfy = comfyui_path()
    if comfy is None or not (comfy / "main.py").is_file():
        pytest.skip(f"COMFYUI_PATH={comfy} is not a ComfyUI checkout (no main.py)")
    models = ensure_weights(GENTLE, GENTLE_STD)  # see weights.py: the parity needs a well-conditioned trajectory
    folder = tmp_path_factory.mktemp("native")
    command_line = _run_command_line(models, comfy, folder)
    measured = {}
    # Two ComfyUI processes: the in-process checks, then the comparison with the command line (its own model).
    for name, extra in (("results", []), ("command_line_results", [str(command_line)])):
        results = folder / f"{name}.json"
        _in_comfyui(comfy, models, [str(results), *extra])
        measured.update(json.loads(results.read_text()))
    measured.update(_library_comparison(models, torch.load(folder / "results.pt", weights_only=True)))
    print(f"native sampling measured: {json.dumps(measured)}")  # the figures, shown with pytest -s
    return measured


def _in_comfyui(comfy: Path, models: Path, arguments: list[str]) -> None:
    """Run native_inprocess.py in ComfyUI's environment on the gentle weights (its docstring says what it does)."""
    files = [models / "checkpoints" / CHECKPOINT, models / "relightvid" / ICLIGHT, models / "relightvid" / MOTION]
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    completed = subprocess.run(
        [python, str(HERE / "native_inprocess.py"), str(comfy), *map(str, files), *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=IN_PROCESS_TIMEOUT,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


CLI_PROMPT, CLI_SEED, CLI_STEPS = "warm sunlight from the left", 11, 4


def _run_command_line(models: Path, comfy: Path, folder: Path) -> Path:
    """``relightvid relight`` on an 8-frame 64x64 clip, fp32, once per official scheduler, each writing its
    latents with ``--latent``; returns the job file native_inprocess.py reads (the clip, the settings, the
    latent files)."""
    clip = write_clip(folder / "clip", frames=8, size=64)
    sd = ensure_diffusers_folder(models, comfy / "comfy" / "sd1_tokenizer")
    latents = {}
    for scheduler in ("ddpm", "ddim"):
        latents[scheduler] = str(folder / f"{scheduler}.latent")
        argv = [
            sys.executable, "-m", "relightvid_core", "relight",
            "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background),
            "--output_path", str(folder / f"{scheduler}.mp4"), "--latent", latents[scheduler],
            "--sd", str(sd), "--iclight", str(models / "relightvid" / ICLIGHT),
            "--motion", str(models / "relightvid" / MOTION), "--no-download",
            "--dtype", "fp32", "--device", "cpu", "--no-progress",
            "--width", "64", "--height", "64", "--prompt", CLI_PROMPT, "--seed", str(CLI_SEED),
            "--steps", str(CLI_STEPS), "--scheduler", scheduler,
        ]  # fmt: skip
        completed = subprocess.run(
            argv,
            check=False,
            capture_output=True,
            text=True,
            timeout=IN_PROCESS_TIMEOUT,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
    job = {"video": str(clip.video), "masks": str(clip.masks), "background": str(clip.background),
           "prompt": CLI_PROMPT, "seed": CLI_SEED, "steps": CLI_STEPS, "latents": latents}  # fmt: skip
    path = folder / "command_line.json"
    path.write_text(json.dumps(job))
    return path


def _library_comparison(models: Path, run: dict) -> dict:
    """The library's ``sample`` on the same weights and inputs as the ComfyUI runs, with its noise drawn from the
    seed as ``relightvid relight`` draws it (one CPU generator: the starting noise, then DDPM's step noise), in
    fp32 as ComfyUI computes. On the gentle weights (weights.py) two fp32 computations of the 4-step trajectory
    agree to about 2e-4; a wrong formula (schedule, scaling, guidance, noise draw) differs by O(1).
    """
    # fp16 weights (merged in fp32, rounded once, as ComfyUI patches fp16 weights) computed in fp32, as there
    unet = load_relightvid_unet(
        models / "checkpoints" / CHECKPOINT,
        models / "relightvid" / ICLIGHT,
        models / "relightvid" / MOTION,
        dtype=torch.float16,
    ).float()
    frames, _, height, width = run["images"][0].shape[1:]

    def library(scheduler, images, dtype):
        generator = torch.Generator().manual_seed(run["seed"])
        noise = torch.randn(1, frames, 4, height, width, generator=generator)
        images = [image.to(dtype) for image in images]
        out = sample(
            unet, noise.to(dtype), images, run["text"].to(dtype), run["text_uncond"].to(dtype),
            scheduler=scheduler, steps=run["steps"], text_cfg=7.5, img_cfg=1.2, generator=generator,
        )
        return out[0].double()

    found = {}
    for scheduler, native in run["runs"].items():
        one = library(scheduler, run["images"][:1], torch.float32)
        iie = library(scheduler, run["images"][1:], torch.float32)
        found[scheduler] = {
            "one_vs_library": (native["one"].double() - one).abs().max().item(),
            "iie_vs_library": (native["iie"].double() - iie).abs().max().item(),
            "library_magnitude": one.abs().max().item(),
            "library_iie_vs_one": (iie - one).abs().max().item(),
        }
    return {"library": found}


def test_conditioning_image_equals_the_library_condition(measured):
    assert measured["image_condition_vs_library"] < 1e-5


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_sampler_node_equals_sampler_custom_advanced_with_the_official_sampler(measured, scheduler):
    run = measured[scheduler]
    assert run["node_vs_custom_dual"] < 1e-5, run  # one IIE factor: DualCFGGuider, the same noise and steps
    assert run["node_vs_custom_iie"] < 1e-5, run
    assert run["iie_vs_one"] > 10 * PARITY_ATOL, run  # the ensemble changes the result


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_same_seed_gives_the_library_and_command_line_latents(measured, scheduler):
    library = measured["library"][scheduler]
    assert library["library_magnitude"] > 0.1  # a real comparison, not of zeros
    assert library["one_vs_library"] < PARITY_ATOL, library
    assert library["iie_vs_library"] < PARITY_ATOL, library
    assert library["library_iie_vs_one"] > 10 * PARITY_ATOL, library


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_same_seed_gives_the_same_latents_in_comfyui_and_from_relightvid_relight(measured, scheduler):
    # The whole command line (its video and mask readers, diffusers' VAE, transformers' CLIP, the library's
    # sampler) against the RelightVid Sampler node with ComfyUI's VAE, CLIP and sampling, fp32 both.
    run = measured["command_line"][scheduler]
    assert run["shapes"] == [[8, 4, 8, 8], [8, 4, 8, 8]], run
    assert run["magnitude"] > 0.1, run  # a real comparison, not of zeros
    assert run["node_vs_command_line"] < PARITY_ATOL, run


def test_rescale_cfg_applies_to_the_iie_guider(measured):
    rescale = measured["rescale_cfg"]
    # Multiplier 0 still runs RescaleCFG's own arithmetic (through the v-prediction scale, divided by σ), which over
    # 4 fp32 steps moves the latents by about 4e-4: unchanged within the parity bar. 0.7 moves them ten times more.
    assert rescale["0.0"] < PARITY_ATOL, rescale
    assert rescale["0.7"] > 10 * rescale["0.0"], rescale


def test_two_relightvid_models_in_one_run_give_what_each_gives_alone(measured):
    two = measured["two_models"]
    assert two["first"] == 0.0 and two["second"] == 0.0, two
    assert two["differ"] > PARITY_ATOL, two  # different clip lengths per call: a real test


@pytest.mark.parametrize("run", ["euler/normal", "dpmpp_2m/karras", "uni_pc/normal"])
def test_ksampler_runs_and_decodes_to_the_clip(measured, run):
    result = measured["ksampler"][run]
    assert result["finite"] and result["latent_shape"] == [8, 4, 8, 8] and result["image_shape"] == [8, 64, 64, 3]


def test_ksampler_video_to_video_from_vae_encode(measured):
    result = measured["vid2vid"]
    assert result["finite"] and result["latent_shape"] == [8, 4, 8, 8] and result["changed"] > 0


def test_windows_give_each_window_its_own_image_and_hint_frames(measured):
    windows, expected = measured["windows"], measured["expected_windows"]
    assert windows["finite"] and windows["output_shape"] == [48, 4, 8, 8]
    # positive and middle carry the image (the negative none): two copies of each window's frames per step
    assert sorted(windows["image_windows"]) == sorted(expected * 2)
    assert sorted({tuple(hint) for hint in windows["hint_windows"]}) == sorted(tuple(w) for w in expected)
    # every call holds whole windows of whole conds: 3 conds x 16 frames per window in all
    assert all(batch % 16 == 0 for batch in windows["batches"]) and sum(windows["batches"]) == 3 * 16 * len(expected)


# --- the native templates in a running server ----------------------------------------------------------


NATIVE_TEMPLATES = ("relightvid_ksampler", "relightvid_custom_sampling", "relightvid_controlnet")
WORKFLOWS = HERE.parents[1] / "example_workflows"


def _graph(queue_tool, name: str, *extra: str) -> dict:
    from harness import small_run_settings

    graph = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    return queue_tool.substitute(graph, small_run_settings(name, name) + list(extra))


def test_native_ksampler_shows_progress_and_stops_on_cancel(server, queue_tool):
    client = queue_tool.Client(server.url)
    events = EventStream(server.url, client.client_id)
    try:
        prompt_id = client.queue(_graph(queue_tool, NATIVE_TEMPLATES[0], "15.steps=200", "15.seed=5"))
        deadline, progress = time.time() + RUN_TIMEOUT, []
        while time.time() < deadline and len(progress) < 2:
            event = events.next_event(timeout=5.0)
            if event and event["type"] == "progress" and event["data"].get("node") == "15":
                progress.append(event["data"]["value"])
        client.interrupt()
        entry = queue_tool.wait(client, prompt_id, RUN_TIMEOUT, report=lambda _: None)
    finally:
        events.close()
    status, cause = queue_tool.outcome(entry)
    assert progress == [1, 2], progress
    assert status == "interrupted" and "node 15" in cause, (status, cause)
