"""RelightVid inside a real ComfyUI process (no server), run by tests/integration/test_native_sampling.py:

    COMFYUI_PYTHON native_inprocess.py COMFYUI_PATH CHECKPOINT ICLIGHT MOTION RESULTS.json [COMMAND_LINE.json]

Loads the random full-size SD1.5 checkpoint with ComfyUI's own loader (fp16 weights, fp32 compute),
patches it with Apply RelightVid, and measures, writing one JSON object of numbers and lists (the test file
asserts on them) and the latents to compare with the library beside it (``RESULTS.pt``; the test runs the
library on the same inputs, so that only one full-size model is in memory at a time):

* for the official DDPM and DDIM, one seed: the RelightVid Sampler node, and SamplerCustomAdvanced with
  RandomNoise, DualCFGGuider / RelightVid IIE Guider, RelightVid Official Sampler and RelightVid Schedule;
* RescaleCFG before the IIE guider (multiplier 0.7 and 0);
* two RelightVid MODELs of different clip lengths and windows sampled one after another, each against
  itself sampled alone;
* KSampler with several samplers and a video-to-video run, decoded by VAE Decode;
* 48 frames in RelightVid Context Windows: which frames of the image condition and of a ControlNet hint
  every U-Net call received;
* with ``COMMAND_LINE.json`` (the clip files, the prompt and the latent files ``relightvid relight --latent``
  wrote for each scheduler), only this: the RelightVid Sampler on the same clip, the checkpoint loaded at
  ComfyUI's own CPU precision (fp32), against those latents.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK = "relightvid_native_inprocess"
FRAMES, SIZE, STEPS = 8, 64, 4
SEED = 7
OFFICIAL = ("ddpm", "ddim")
LONG_FRAMES, WINDOW, OVERLAP = 48, 16, 4
IIE_FACTORS = "0.5, 1.5"
TEXT_SCALE, IMAGE_SCALE = 7.5, 1.2
KSAMPLER_RUNS = (("euler", "normal"), ("dpmpp_2m", "karras"), ("uni_pc", "normal"))


def log(stage: str) -> None:
    """Progress on stderr with the process's peak memory (the test shows it when the run fails)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"[{time.strftime('%H:%M:%S')}] {stage} (peak memory {peak:.1f} GiB)", file=sys.stderr, flush=True)


def start_comfy(comfy_path: str):
    """ComfyUI importable on the CPU (COMFYUI.md §10), then the pack imported as ComfyUI imports it."""
    sys.path[:0] = [comfy_path, str(REPO_ROOT / "tests"), str(REPO_ROOT)]
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    from _support.comfy_fakes import load_pack

    return load_pack(PACK)


def main(
    comfy_path: str, checkpoint: str, iclight: str, motion: str, results_path: str, command_line: str | None = None
) -> None:
    pack = start_comfy(comfy_path)
    node = {name: cls() for name, cls in pack.NODE_CLASS_MAPPINGS.items()}
    if command_line is not None:  # a process of its own: its fp32 model and the fp16 one do not fit in 24 GB together
        found = _command_line_parity(node, checkpoint, iclight, motion, command_line)
        Path(results_path).write_text(json.dumps({"command_line": found}, indent=1))
        return
    import comfy.controlnet
    import comfy.model_management
    import comfy.samplers
    import comfy.sd
    import node_helpers
    import torch
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise, SamplerCustomAdvanced
    from comfy_extras.nodes_model_advanced import RescaleCFG

    import nodes as comfy_nodes

    core = sys.modules[PACK + ".relightvid_core"]
    key = sys.modules[PACK + ".nodes.model_patch.iclight"].RELIGHTVID_IMAGE_KEY
    scale = core.vae.SD_LATENT_SCALE
    results: dict = {}

    # fp16 weights (as most users run SD1.5), computed in fp32 on the CPU through ComfyUI's manual cast: half
    # the memory of fp32 weights, and the library reproduces the same rounded weights (fp16, computed in fp32).
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        checkpoint, output_vae=True, output_clip=True, model_options={"dtype": torch.float16}
    )
    relit = sys.modules[PACK + ".nodes.model_patch.patch"].apply_relightvid(model, iclight, motion)
    log("models loaded")

    def encode(text):
        return clip.encode_from_tokens_scheduled(clip.tokenize(text))

    prompt, empty = encode("warm sunlight from the left"), encode("")
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(FRAMES, SIZE, SIZE, 3, generator=generator)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    masks = (((ys - SIZE / 2) ** 2 + (xs - SIZE / 2) ** 2) < (SIZE / 3) ** 2).float().expand(FRAMES, SIZE, SIZE)
    foreground, *_ = node["RelightVidForeground"].prepare(
        vae, "center_crop", SIZE, SIZE, "official_128", 0, 0.0, False, 0, 1, 0, images=frames, mask=masks.clone()
    )
    background, _ = node["RelightVidLightPreset"].render(foreground, "left", "none", "#FFE2C0", 1.0, 1.0)
    positive, middle, negative, latent = node["RelightVidNativeConditioning"].condition(
        foreground, background, prompt, empty
    )
    (text,) = node["RelightVidTextConditioning"].combine(prompt, empty)

    def relightvid_sampler(scheduler, factors, model=relit, window=16, overlap=4):
        (out,) = node["RelightVidSampler"].relight(
            model, foreground, background, text, SEED, STEPS, scheduler, TEXT_SCALE, IMAGE_SCALE, factors, window,
            overlap, "pyramid", False,
        )
        return out["samples"].float()

    def custom_advanced(guider, scheduler, run_latent=latent):
        (sampler,) = node["RelightVidOfficialSampler"].sampler(scheduler)
        (sigmas,) = node["RelightVidSchedule"].schedule(guider.model_patcher, scheduler, STEPS, 1.0)
        output, _denoised = SamplerCustomAdvanced().sample(Noise_RandomNoise(SEED), guider, sampler, sigmas, run_latent)
        return output["samples"].float()

    def iie_guider(model, factors):
        return node["RelightVidIIEGuider"].guider(
            model, foreground, background, prompt, empty, factors, TEXT_SCALE, IMAGE_SCALE
        )[0]

    saved = {}
    for scheduler in OFFICIAL:
        node_one, node_iie = relightvid_sampler(scheduler, "1.0"), relightvid_sampler(scheduler, IIE_FACTORS)
        custom_dual = custom_advanced(dual_guider(relit, positive, middle, negative), scheduler)
        custom_iie = custom_advanced(iie_guider(relit, IIE_FACTORS), scheduler)
        results[scheduler] = {
            "node_vs_custom_dual": (node_one - custom_dual).abs().max().item(),
            "node_vs_custom_iie": (node_iie - custom_iie).abs().max().item(),
            "iie_vs_one": (node_iie - node_one).abs().max().item(),
        }
        saved[scheduler] = {"one": node_one * scale, "iie": node_iie * scale}
        log(f"{scheduler}: sampler node and SamplerCustomAdvanced done")

    plain = custom_advanced(iie_guider(relit, IIE_FACTORS), "ddim")
    rescaled = {
        multiplier: custom_advanced(iie_guider(RescaleCFG().patch(relit, multiplier)[0], IIE_FACTORS), "ddim")
        for multiplier in (0.7, 0.0)
    }
    results["rescale_cfg"] = {str(k): (v - plain).abs().max().item() for k, v in rescaled.items()}
    _free_memory()
    log("RescaleCFG done")

    # Two RelightVid MODELs sampled in one process, one after the other and back: the second (its own temporal
    # weights, 4-frame windows) must not change what the first gives, nor the first the second.
    other = sys.modules[PACK + ".nodes.model_patch.patch"].apply_relightvid(model, iclight, motion)
    alone = {"first": relightvid_sampler("ddim", "1.0"), "second": relightvid_sampler("ddim", "1.0", other, 4, 2)}
    again = {"second": relightvid_sampler("ddim", "1.0", other, 4, 2), "first": relightvid_sampler("ddim", "1.0")}
    results["two_models"] = {
        "first": (again["first"] - alone["first"]).abs().max().item(),
        "second": (again["second"] - alone["second"]).abs().max().item(),
        "differ": (alone["first"] - alone["second"]).abs().max().item(),
    }
    del other, alone, again
    _free_memory()
    log("two models done")

    # The library's inputs for the same runs: its IIE conditions from the same frames and VAE.
    iie_factors = tuple(float(k) for k in IIE_FACTORS.split(","))
    library_images = core.sampling.iie_image_conditions(
        foreground.frames,
        foreground.masks,
        (1.0, *iie_factors),
        lambda f: vae.encode(f[..., :3]).float() * scale,
        vae.encode(background.frames).float() * scale,
        foreground.gray,
    )
    results["image_condition_vs_library"] = (positive[0][1][key] * scale - library_images[0][0]).abs().max().item()
    torch.save(
        {"seed": SEED, "steps": STEPS, "images": library_images, "text": prompt[0][0], "text_uncond": empty[0][0],
         "runs": saved},
        Path(results_path).with_suffix(".pt"),
    )
    Path(results_path).write_text(json.dumps(results, indent=1))  # partial results, in case a later stage fails
    log("library inputs saved")

    # KSampler (2-way guidance) with several samplers and schedulers, decoded; and video-to-video.
    results["ksampler"] = {}
    for sampler_name, scheduler in KSAMPLER_RUNS:
        (out,) = comfy_nodes.KSampler().sample(
            relit, 3, 2, TEXT_SCALE, sampler_name, scheduler, positive, negative, latent, denoise=1.0
        )
        (images,) = comfy_nodes.VAEDecode().decode(vae, out)
        results["ksampler"][f"{sampler_name}/{scheduler}"] = {
            "latent_shape": list(out["samples"].shape),
            "finite": bool(torch.isfinite(out["samples"]).all()),
            "image_shape": list(images.shape),
        }
    (encoded,) = comfy_nodes.VAEEncode().encode(vae, frames)
    (vid2vid,) = comfy_nodes.KSampler().sample(
        relit, 3, 4, TEXT_SCALE, "euler", "normal", positive, negative, encoded, denoise=0.5
    )
    results["vid2vid"] = {
        "latent_shape": list(vid2vid["samples"].shape),
        "finite": bool(torch.isfinite(vid2vid["samples"]).all()),
        "changed": (vid2vid["samples"] - encoded["samples"]).abs().max().item(),
    }

    _free_memory()
    log("KSampler runs done")
    results["windows"] = _window_spy(torch, comfy, node_helpers, node, relit, prompt, empty, key, scale)
    results["expected_windows"] = core.sampling.window_indices(LONG_FRAMES, WINDOW, OVERLAP)

    Path(results_path).write_text(json.dumps(results, indent=1))


def _free_memory() -> None:
    """Unload what ComfyUI keeps loaded and collect what nothing references any more, between stages: on a 24 GB
    machine the later stages need the memory of the earlier ones back."""
    import gc

    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()
    comfy.model_management.soft_empty_cache()


def _command_line_parity(node: dict, checkpoint: str, iclight: str, motion: str, job_path: str) -> dict:
    """The RelightVid Sampler on the clip ``relightvid relight`` read, as the command line prepares it (the
    library's reader, centre crop at the clip's own size, the background looped and covering), against the
    latents the command line wrote: max |Δ| per scheduler and the latents' magnitude, in the U-Net's latent
    space (ComfyUI's LATENT times the SD scaling factor) as the comparisons with the library."""
    import comfy.sd
    from safetensors.torch import load_file

    import nodes as comfy_nodes

    conditioning = importlib.import_module(PACK + ".relightvid_core.conditioning")
    video_io = importlib.import_module(PACK + ".relightvid_core.video_io")
    scale = importlib.import_module(PACK + ".relightvid_core.vae").SD_LATENT_SCALE
    job = json.loads(Path(job_path).read_text())
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(checkpoint, output_vae=True, output_clip=True)
    relit = sys.modules[PACK + ".nodes.model_patch.patch"].apply_relightvid(model, iclight, motion)
    official = conditioning.read_official_clip(job["video"], job["masks"])
    height, width = official.frames.shape[1:3]
    background_frames, _fps = video_io.read_video(job["background"])
    foreground, *_ = node["RelightVidForeground"].prepare(
        vae, "center_crop", width, height, "official_128", 0, 0.0, False, 0, 1, 0,
        images=official.frames, mask=official.masks,
    )  # fmt: skip
    background, _ = node["RelightVidBackground"].fit(foreground, "loop", "cover", False, 0, 1, 0, images=background_frames)
    (prompt,) = comfy_nodes.CLIPTextEncode().encode(clip, job["prompt"])
    (text,) = node["RelightVidTextConditioning"].combine(prompt, clip=clip)
    found = {}
    for scheduler, latent_file in job["latents"].items():
        (out,) = node["RelightVidSampler"].relight(
            relit, foreground, background, text, job["seed"], job["steps"], scheduler, TEXT_SCALE, IMAGE_SCALE,
            "1.0", 16, 4, "pyramid", False,
        )  # fmt: skip
        command_line = load_file(latent_file)["latent_tensor"].double() * scale
        found[scheduler] = {
            "node_vs_command_line": (out["samples"].double() * scale - command_line).abs().max().item(),
            "magnitude": command_line.abs().max().item(),
            "shapes": [list(out["samples"].shape), list(command_line.shape)],
        }
        log(f"{scheduler}: RelightVid Sampler against relightvid relight done")
    return found


def _window_spy(torch, comfy, node_helpers, node, relit, prompt, empty, key, scale) -> dict:
    """48 frames in 16/4 windows, one DualCFG step: the frames of the image condition and of a ControlNet hint
    each U-Net call got. Every value of frame i is i, so a call's frames can be read off its tensors."""

    class SpyControl(comfy.controlnet.ControlBase):
        """A ControlNet stand-in recording the hint frames it is asked to apply; adds no residuals."""

        def __init__(self, seen):
            super().__init__()
            self.seen = seen

        def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
            self.seen.append(self.cond_hint_original[:, 0, 0, 0].round().int().tolist())

        def copy(self):
            copied = SpyControl(self.seen)
            self.copy_to(copied)
            return copied

    numbers = torch.arange(LONG_FRAMES, dtype=torch.float32).view(LONG_FRAMES, 1, 1, 1)
    latent_size = SIZE // 8
    image = numbers.expand(LONG_FRAMES, 8, latent_size, latent_size).clone()
    hints: list = []
    control = SpyControl(hints).set_cond_hint(numbers.expand(LONG_FRAMES, 3, SIZE, SIZE).clone())
    positive = node_helpers.conditioning_set_values(prompt, {key: image, "control": control})
    middle = node_helpers.conditioning_set_values(empty, {key: image, "control": control})
    negative = node_helpers.conditioning_set_values(empty, {"control": control})

    (windowed,) = node["RelightVidContextWindows"].apply(relit, WINDOW, OVERLAP, "pyramid", False)
    windowed = windowed.clone()
    calls: list = []

    def spy(apply_model, args):
        concat = args["c"]["c_concat"][:, 0, 0, 0] / scale
        calls.append({"batch": args["input"].shape[0], "concat": concat.round().int().tolist()})
        return apply_model(args["input"], args["timestep"], **args["c"])

    windowed.set_model_unet_function_wrapper(spy)
    guider = dual_guider(windowed, positive, middle, negative)
    (sigmas,) = node["RelightVidSchedule"].schedule(windowed, "ddim", 1, 1.0)
    noise = torch.randn(LONG_FRAMES, 4, latent_size, latent_size, generator=torch.Generator().manual_seed(2))
    out = guider.sample(noise, torch.zeros_like(noise), comfy.samplers.sampler_object("euler"), sigmas, seed=0)
    image_windows = []
    for call in calls:
        for start in range(0, call["batch"], WINDOW):
            chunk = call["concat"][start : start + WINDOW]
            if any(chunk):  # the negative's chunk is all zeros (no image)
                image_windows.append(chunk)
    return {
        "calls": len(calls),
        "batches": [call["batch"] for call in calls],
        "image_windows": image_windows,
        "hint_windows": hints,
        "output_shape": list(out.shape),
        "finite": bool(torch.isfinite(out).all()),
    }


def dual_guider(model, positive, middle, negative):
    """Core's DualCFGGuider (style regular) with RelightVid's scales: cfg_conds = text, cfg_cond2_negative = image."""
    from comfy_extras.nodes_custom_sampler import Guider_DualCFG

    guider = Guider_DualCFG(model)
    guider.set_conds(positive, middle, negative)
    guider.set_cfg(TEXT_SCALE, IMAGE_SCALE)
    return guider


if __name__ == "__main__":
    main(*sys.argv[1:])
