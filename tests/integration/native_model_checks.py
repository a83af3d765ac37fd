"""Checks of Apply RelightVid (native MODEL) inside a real ComfyUI, run in-process by ComfyUI's interpreter.

``python native_model_checks.py CHECK`` prints one JSON object (the measured differences) on its last line;
``test_native_model.py`` runs each check in its own process (each loads the full-size random weights it
needs once, and the memory is returned when it exits) and asserts on the numbers.

Environment: ``COMFYUI_PATH`` (the checkout), ``RELIGHTVID_TEST_CACHE`` (the random weights of weights.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

STARTED = time.monotonic()
REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "relightvid_native_pack"
CACHE = Path(os.environ.get("RELIGHTVID_TEST_CACHE", "/tmp/relightvid-test-cache")) / "models"
CHECKPOINT = CACHE / "checkpoints" / "rv_random_sd15.safetensors"
ICLIGHT = "iclight_sd15_fbc.safetensors"
ICLIGHT_FC = "iclight_sd15_fc.safetensors"
MOTION = "relvid_mm_sd15_fbc.pth"
FRAMES, HEIGHT, WIDTH = 8, 8, 8  # latent size
TIMESTEP = 500
CFG = 3.0
LORA_RANK = 4
LOWVRAM_BUDGET = 1024**3  # bytes of the U-Net's weights kept resident in the partial-load check (of ~3.3 GB)
# Weights stored in fp16 (as most users run SD1.5) and computed in fp32 on the CPU (ComfyUI's manual cast):
# half the memory of fp32 weights. The parity check alone stores fp32, as the library's reference does.
STORAGE_DTYPE = torch.float16


CHECK_NAME = sys.argv[1] if len(sys.argv) > 1 else None  # read before ComfyUI's argument parsing replaces argv


def start_comfy():
    """Import ComfyUI on the CPU (COMFYUI.md §10) and the pack as ComfyUI imports it; point models/relightvid
    at the cache."""
    sys.path[:0] = [os.environ["COMFYUI_PATH"], str(REPO_ROOT / "tests"), str(REPO_ROOT)]
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths
    from _support.comfy_fakes import load_pack

    folder_paths.add_model_folder_path("relightvid", str(CACHE / "relightvid"))
    return load_pack(PACK_NAME)


PACK = start_comfy()
import comfy.controlnet  # noqa: E402
import comfy.model_base  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402
import nodes  # noqa: E402  (ComfyUI's core nodes)

IMAGE_KEY = sys.modules[PACK_NAME + ".nodes.model_patch.iclight"].RELIGHTVID_IMAGE_KEY
core = sys.modules[PACK_NAME + ".relightvid_core"]


def load_base(dtype: torch.dtype = STORAGE_DTYPE):
    """The checkpoint's MODEL as Load Checkpoint gives it (U-Net only), weights stored in ``dtype``."""
    return comfy.sd.load_checkpoint_guess_config(
        str(CHECKPOINT), output_vae=False, output_clip=False, model_options={"dtype": dtype}
    )[0]


def apply(model, iclight: str = ICLIGHT, motion: str = MOTION):
    return PACK.NODE_CLASS_MAPPINGS["RelightVidApplyModel"]().apply(model, iclight, motion)[0]


def inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(FRAMES, 4, HEIGHT, WIDTH, generator=generator)
    context = torch.randn(1, 77, 768, generator=generator)
    image = torch.randn(FRAMES, 8, HEIGHT, WIDTH, generator=generator) * 5  # raw latents, as VAE Encode gives
    return x, context, image


def conds(context, image=None, **extras):
    values = {"pooled_output": torch.zeros(1, 768), **extras}
    if image is not None:
        values[IMAGE_KEY] = image
    return [[context, values]]


def predict_eps(model, x, positive, negative, cfg):
    """ε that ComfyUI's sampling computes for U-Net input ``x`` at :data:`TIMESTEP` (CFG over the two conds)."""
    sigma = model.get_model_object("model_sampling").sigmas[TIMESTEP].item()
    x_in = x * (sigma**2 + 1) ** 0.5  # ComfyUI divides by this (c_in) before the U-Net
    captured = {}

    def one_call(model_k, noise, sigmas, extra_args=None, callback=None, disable=None):
        captured["denoised"] = model_k(x_in, torch.full((x_in.shape[0],), sigma), **extra_args)
        return noise

    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    zeros = torch.zeros_like(x)
    guider.sample(zeros, zeros, comfy.samplers.KSAMPLER(one_call), torch.tensor([sigma, 0.0]), seed=0)
    return ((x_in - captured["denoised"]) / sigma).float()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def free_models() -> None:
    """Unload every model and collect, so at most one patched U-Net (about 10 GB in fp32) is alive at a time."""
    comfy.model_management.unload_all_models()
    gc.collect()


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def library_eps(x, context, image):
    """ε of the library's RelightVidUNet (the official reproduction) from the same three files, fp32."""
    unet = core.load_relightvid_unet(
        str(CHECKPOINT), str(CACHE / "relightvid" / ICLIGHT), str(CACHE / "relightvid" / MOTION), dtype=torch.float32
    )
    scaled = image * core.vae.SD_LATENT_SCALE
    results = {}
    with torch.no_grad():
        for name, condition in (("image", scaled), ("zeros", torch.zeros_like(scaled))):
            sample = torch.cat([x, condition], dim=1).transpose(0, 1)[None]  # (1, 12, F, h, w)
            results[name] = unet(sample, TIMESTEP, encoder_hidden_states=context)[0].transpose(0, 1).float()
    del unet
    free_models()
    return results


def check_parity():
    x, context, image = inputs()
    expected = library_eps(x, context, image)
    log("library U-Net done")
    model = apply(load_base(torch.float32))
    log("patched MODEL ready")
    with_image = predict_eps(model, x, conds(context, image), conds(context), 1.0)
    # cfg 0 returns the negative's ε exactly: the branch without an image (a positive must carry one).
    without_image = predict_eps(model, x, conds(context, image), conds(context), 0.0)
    guided = predict_eps(model, x, conds(context, image), conds(context), CFG)
    expected_guided = expected["zeros"] + CFG * (expected["image"] - expected["zeros"])
    return {
        "image": max_diff(with_image, expected["image"]),
        "zeros": max_diff(without_image, expected["zeros"]),
        "guided": max_diff(guided, expected_guided),
        "scale": expected["image"].abs().max().item(),
        "image_vs_zeros": max_diff(expected["image"], expected["zeros"]),
    }


def random_lora(base) -> dict[str, torch.Tensor]:
    """A kohya-style LoRA on three U-Net layers (attention and feed-forward linears)."""
    generator = torch.Generator().manual_seed(1)
    targets = [
        "input_blocks.1.1.transformer_blocks.0.attn1.to_q",
        "middle_block.1.transformer_blocks.0.attn2.to_k",
        "output_blocks.5.1.transformer_blocks.0.ff.net.2",
    ]
    weights = base.model.diffusion_model.state_dict()
    lora = {}
    for target in targets:
        out_features, in_features = weights[target + ".weight"].shape
        name = "lora_unet_" + target.replace(".", "_")
        lora[name + ".lora_down.weight"] = torch.randn(LORA_RANK, in_features, generator=generator) * 0.2
        lora[name + ".lora_up.weight"] = torch.randn(out_features, LORA_RANK, generator=generator) * 0.2
        lora[name + ".alpha"] = torch.tensor(float(LORA_RANK))
    return lora, targets


def check_lora():
    from safetensors.torch import save_file

    x, context, image = inputs()
    positive, negative = conds(context, image), conds(context)
    # fp32 storage on both sides: in fp16 the LoRA-patched and the baked weights may round differently.
    base = load_base(torch.float32)
    lora, targets = random_lora(base)
    with tempfile.TemporaryDirectory() as folder:
        save_file(lora, os.path.join(folder, "random_lora.safetensors"))
        folder_paths.add_model_folder_path("loras", folder)
        with_lora = nodes.LoraLoaderModelOnly().load_lora_model_only(base, "random_lora.safetensors", 1.0)[0]
    eps_lora = predict_eps(apply(with_lora), x, positive, negative, CFG)
    del with_lora
    free_models()
    eps_plain = predict_eps(apply(base), x, positive, negative, CFG)
    free_models()
    log("LoRA and plain predictions done")

    baked = {key: value.float().clone() for key, value in base.model.diffusion_model.state_dict().items()}
    del base
    free_models()
    for target in targets:
        name = "lora_unet_" + target.replace(".", "_")
        baked[target + ".weight"] += lora[name + ".lora_up.weight"] @ lora[name + ".lora_down.weight"]
    baked_model = comfy.sd.load_diffusion_model_state_dict(baked, model_options={"dtype": torch.float32})
    del baked
    eps_baked = predict_eps(apply(baked_model), x, positive, negative, CFG)
    return {"lora_vs_baked": max_diff(eps_lora, eps_baked), "lora_vs_plain": max_diff(eps_lora, eps_plain)}


def random_controlnet(base):
    """An SD1.5-shaped ControlNet with random weights, loaded by ComfyUI's own ControlNet loader."""
    import comfy.cldm.cldm
    import comfy.ops

    config = dict(base.model.model_config.unet_config)
    config.pop("out_channels")
    with torch.device("meta"):
        shapes = comfy.cldm.cldm.ControlNet(
            hint_channels=3, operations=comfy.ops.disable_weight_init, device="meta", **config
        ).state_dict()
    generator = torch.Generator().manual_seed(2)
    state_dict = {
        key: (torch.randn(value.shape, generator=generator) * 0.02).to(STORAGE_DTYPE) for key, value in shapes.items()
    }
    return comfy.controlnet.load_controlnet_state_dict(state_dict, model_options={"dtype": STORAGE_DTYPE})


def check_controlnet():
    x, context, image = inputs()
    model = apply(load_base())
    log("patched MODEL ready")
    control = random_controlnet(model)
    log("ControlNet ready")
    hints = torch.rand(FRAMES, HEIGHT * 8, WIDTH * 8, 3, generator=torch.Generator().manual_seed(3))
    seen = []
    control.control_model.input_hint_block.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    positive, negative = conds(context, image), conds(context)
    controlled, _ = nodes.ControlNetApplyAdvanced().apply_controlnet(positive, negative, control, hints, 1.0, 0.0, 1.0)
    eps_controlled = predict_eps(model, x, controlled, negative, 1.0)
    log("controlled prediction done")
    eps_plain = predict_eps(model, x, positive, negative, 1.0)
    hint_batch = seen[-1]
    per_frame = [max_diff(hint_batch[k], hints[k].movedim(-1, 0)) for k in range(FRAMES)]
    return {
        "control_effect": max_diff(eps_controlled, eps_plain),
        "hint_batch": hint_batch.shape[0],
        "hint_k_to_frame_k": max(per_frame),
    }


def check_fp8():
    x, context, image = inputs()
    positive, negative = conds(context, image), conds(context)
    eps_reference = predict_eps(apply(load_base()), x, positive, negative, CFG)
    free_models()
    base = load_base(torch.float8_e4m3fn)
    patched = apply(base)
    eps_fp8 = predict_eps(patched, x, positive, negative, CFG)
    cosine = torch.nn.functional.cosine_similarity(eps_fp8.flatten(), eps_reference.flatten(), dim=0).item()
    return {
        "weight_dtype": str(base.model.get_dtype()),
        "finite": bool(torch.isfinite(eps_fp8).all()),
        "shape": list(eps_fp8.shape),
        "cosine_to_fp16": cosine,
    }


@contextlib.contextmanager
def weight_budget(budget: float):
    """Model management loads the U-Net with at most ``budget`` bytes of its weights resident, the rest cast and
    patched per call (ComfyUI's low-VRAM partial loading). On the CPU ComfyUI never loads partially (its
    ``--lowvram``/``--novram`` states apply to GPUs), so the check sets the budget where ComfyUI computes it."""
    loaded_model = comfy.model_management.LoadedModel
    original = loaded_model.model_load

    def model_load(self, lowvram_model_memory=0, force_patch_weights=False):
        if isinstance(self.model.model, comfy.model_base.BaseModel):  # the U-Net, not the temporal modules
            lowvram_model_memory = budget
        return original(self, lowvram_model_memory, force_patch_weights)

    loaded_model.model_load = model_load
    try:
        yield
    finally:
        loaded_model.model_load = original


def check_lowvram():
    """The patched MODEL loaded partially predicts what it predicts loaded whole; the 12-channel conv_in then
    gets IC-Light's widening at call time (ComfyUI's LowVramPatch), its stored weight keeps 4 channels."""
    x, context, image = inputs()
    positive, negative = conds(context, image), conds(context)
    model = apply(load_base(torch.float32))  # fp32 storage: a patched weight is not rounded in either path
    whole = predict_eps(model, x, positive, negative, CFG)
    free_models()
    conv_in = model.model.diffusion_model.input_blocks[0][0]
    results = {}
    for name, budget in (("partial", LOWVRAM_BUDGET), ("none", 0.1)):
        with weight_budget(budget):
            eps = predict_eps(model, x, positive, negative, CFG)
            results[name] = {
                "vs_whole": max_diff(eps, whole),
                "partially_loaded": bool(model.model.model_lowvram),
                "streamed_patches": model.lowvram_patch_counter(),
                "resident_mb": round(model.loaded_size() / 2**20, 1),
                "model_mb": round(model.model_size() / 2**20, 1),
                "conv_in_stored_channels": conv_in.weight.shape[1],
                "conv_in_patched_per_call": any("LowVramPatch" in type(f).__name__ for f in conv_in.weight_function),
            }
        free_models()
        log(f"{name} load done")
    return results


def _digest(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()


def own_attributes(base_model) -> list[str]:
    """The BaseModel's instance attributes, less a method ComfyUI's unpatch puts back as an instance attribute
    (``set_attr`` restores the bound method it replaced: the class's own function, bound to the same model)."""
    return sorted(
        key
        for key, value in vars(base_model).items()
        if not (
            inspect.ismethod(value)
            and value.__self__ is base_model
            and value.__func__ is getattr(type(base_model), key, None)
        )
    )


def fingerprint(model) -> dict[str, str]:
    """Hashes of a MODEL's U-Net weights, model_options, patches, object patches and config."""
    weights = [
        (key, value.float().contiguous().numpy().tobytes()) for key, value in model.model.state_dict().items()
    ]
    return {
        "weights": _digest(*(part for pair in weights for part in pair)),
        "model_options": _digest(model.model_options),
        "patches": _digest(sorted(model.patches), model.patches_uuid),
        "object_patches": _digest(sorted(model.object_patches)),
        "injections_wrappers": _digest(model.injections, model.wrappers, model.additional_models),
        "config": _digest(model.model.model_config.unet_config, type(model.model.model_config).__name__),
        "model_attributes": _digest(own_attributes(model.model)),
    }


def check_identity():
    x, context, image = inputs()
    base = load_base()
    plain = conds(context)
    before_eps = predict_eps(base, x, plain, plain, 1.0)
    free_models()
    before = fingerprint(base)
    patched = apply(base)
    predict_eps(patched, x, conds(context, image), plain, CFG)
    free_models()
    after = fingerprint(base)
    after_eps = predict_eps(base, x, plain, plain, 1.0)
    return {
        "changed": sorted(part for part in before if before[part] != after[part]),
        "eps_bit_identical": bool(torch.equal(before_eps, after_eps)),
        "clone_is_new": patched is not base and patched.model is base.model,
    }


def check_errors():
    """Each bad input's one-sentence message (the frame mismatch is raised while sampling)."""
    x, context, image = inputs()
    base = load_base()
    messages = {}
    for name, call in (
        ("fc_file", lambda: apply(base, iclight=ICLIGHT_FC)),
        ("motion_file", lambda: apply(base, motion=ICLIGHT)),
    ):
        try:
            call()
        except core.RelightVidError as error:
            messages[name] = str(error)
    model = apply(base)
    for name, positive in (("frames", conds(context, image[: FRAMES - 2])), ("no_image", conds(context))):
        try:
            predict_eps(model, x, positive, conds(context), CFG)
        except core.RelightVidError as error:
            messages[name] = str(error)
    return messages


CHECKS = {
    "parity": check_parity,
    "lora": check_lora,
    "controlnet": check_controlnet,
    "fp8": check_fp8,
    "identity": check_identity,
    "lowvram": check_lowvram,
    "errors": check_errors,
}

if __name__ == "__main__":
    torch.manual_seed(0)
    with torch.inference_mode(False), torch.no_grad():
        result = CHECKS[CHECK_NAME]()
    print(json.dumps(result))
