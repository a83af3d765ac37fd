"""Peak memory of the full-size U-Net and the VAE decode, estimated on fake tensors: no GPU, no memory used.

Each row builds the network on the meta device in the run's dtype, gives it fake weights and inputs and
traces one call with :func:`relightvid_core.models.memory.trace_peak`, which counts the bytes of every
live tensor storage (weights included). This is an **estimate** of ``torch.cuda.max_memory_allocated``:
the CUDA allocator's rounding and fragmentation, the CUDA context and cuDNN/cuBLAS workspaces are not in
it, and attention is counted with the fused kernel PyTorch picks (flash attention: output and log-sum-exp
only), as a recent GPU does. ``--check`` validates the tracer on a small config: the fake-tensor trace,
the same tracer on real CPU tensors, and the CPU allocator's own peak from ``torch.profiler``.

    python bench/bench_vram.py                                  # our rows
    python bench/bench_vram.py --official /work/official        # and the official network beside them
    python bench/bench_vram.py --check                          # the estimate's own check (small config)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from diffusers.utils import logging as diffusers_logging
from torch.nn.attention import SDPBackend, sdpa_kernel

from relightvid_core import FULL_FBC, RelightVidUNet
from relightvid_core.models.memory import PeakMemory, trace_peak
from relightvid_core.models.random_init import randomize_weights
from relightvid_core.sampling import Conditions, ContextWindows, Guidance, guided_model
from relightvid_core.vae import decode_latents
from relightvid_core.model_files import DTYPES

GIB = 2**30
TOKENS = 77
# SD1.5's VAE (diffusers layout of runwayml/stable-diffusion-v1-5/vae/config.json).
SD15_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
}
# Done-when targets of the estimate (GiB).
TARGETS = {"16 × 512², batch 3, one call": 4.0, "16 × 512², batch 1 (memory mode low)": 3.0, "16 × 1024×576, batch 3, one call": 6.5}
SMALL = {**FULL_FBC, "block_out_channels": [64, 128, 256, 256]}


def meta_unet(config: dict, dtype: torch.dtype) -> RelightVidUNet:
    with torch.device("meta"):
        return RelightVidUNet.from_config(config).to(dtype).eval()


def meta_official(official_dir: Path, dtype: torch.dtype):
    sys.path.insert(0, str(official_dir))
    from modules.video_unet_temporal.unet import UNet3DConditionModel  # the official network

    with torch.device("meta"):
        return UNet3DConditionModel.from_config(FULL_FBC).to(dtype).eval()


def unet_call(batch: int, frames: int, height: int, width: int, dtype: torch.dtype, official: bool) -> Callable:
    """One U-Net forward on (batch, 12, frames, height, width) latents and 77 text tokens."""

    def run(model):
        sample = torch.randn(batch, 12, frames, height, width, dtype=dtype)
        context = torch.randn(batch, TOKENS, 768, dtype=dtype)
        timesteps = torch.full((batch,), 500)
        if official:
            return model(sample, timesteps, encoder_hidden_states=context).sample
        return model(sample, timesteps, context)

    return run


def windows_step(frames: int, height: int, width: int, dtype: torch.dtype) -> Callable:
    """One guided sampling step (3 branches, one call per window) over ``frames`` in 16/4 windows."""

    def run(model):
        guidance_fn = guided_model(model, Guidance(), ContextWindows(length=16, overlap=4))
        latents = torch.randn(1, frames, 4, height, width)
        conditions = Conditions(
            images=(torch.randn(1, frames, 8, height, width, dtype=dtype),),
            text=torch.randn(1, TOKENS, 768, dtype=dtype),
            text_uncond=torch.randn(1, TOKENS, 768, dtype=dtype),
        )
        return guidance_fn(latents, torch.tensor(950), conditions)

    return run


def vae_decode(frames: int, height: int, width: int) -> Callable:
    """:func:`decode_latents` of ``frames`` latents, one frame per VAE call (the official decode batch too)."""

    def run(vae):
        return decode_latents(vae, torch.randn(frames, 4, height, width), chunk_size=1)

    return run


def meta_vae(dtype: torch.dtype) -> AutoencoderKL:
    with torch.device("meta"):
        return AutoencoderKL(**SD15_VAE).to(dtype).eval()


def gib(value: int) -> str:
    return f"{value / GIB:.2f}"


def rows(args: argparse.Namespace) -> list[tuple[str, Callable[[], PeakMemory], Callable[[], PeakMemory] | str | None]]:
    """(name, ours, official: a trace, a sentence when it cannot run, or None without ``--official``) per row."""
    dtype = DTYPES[args.dtype]
    ours = lambda: meta_unet(FULL_FBC, dtype)  # noqa: E731
    official = (lambda: meta_official(args.official, dtype)) if args.official else None  # noqa: E731

    def unet_row(name, batch, frames, height, width):
        ours_fn = lambda: trace_peak(ours(), unet_call(batch, frames, height, width, dtype, False))  # noqa: E731
        official_fn = (
            (lambda: trace_peak(official(), unet_call(batch, frames, height, width, dtype, True))) if official else None
        )
        return name, ours_fn, official_fn

    def math_attention(model_fn, is_official):
        with sdpa_kernel(SDPBackend.MATH):
            return trace_peak(model_fn(), unet_call(3, 16, 64, 64, dtype, is_official))

    # The official code has no windows, and one call of 48 frames stops at its 32-frame position encoding.
    official_48 = "cannot run 48 frames (position encoding of 32)" if official else None
    official_math = (lambda: math_attention(official, True)) if official else None  # noqa: E731

    vae_rows = [
        (f"VAE decode 16 × {label}, one frame per call", lambda h=h, w=w: trace_peak(meta_vae(dtype), vae_decode(16, h, w)), None)
        for label, h, w in (("512²", 64, 64), ("1024×576", 72, 128))
    ]
    return [
        unet_row("16 × 512², batch 3, one call", 3, 16, 64, 64),
        unet_row("16 × 512², batch 1 (memory mode low)", 1, 16, 64, 64),
        unet_row("16 × 1024×576, batch 3, one call", 3, 16, 72, 128),
        unet_row("16 × 1024×576, batch 1 (memory mode low)", 1, 16, 72, 128),
        (
            "48 × 512², windows 16/4, one guided step",
            lambda: trace_peak(ours(), windows_step(48, 64, 64, dtype)),
            official_48,
        ),
        (
            "16 × 512², batch 3, without fused attention (math SDPA)",
            lambda: math_attention(ours, False),
            official_math,
        ),
        *vae_rows,
    ]


def check(dtype: torch.dtype) -> None:
    """Fake-tensor estimate against real tensors on the small config (CPU): the same tracer, and the profiler."""
    torch.manual_seed(0)
    shape = (3, 8, 16, 16)
    fake = trace_peak(meta_unet(SMALL, dtype), unet_call(*shape, dtype, False))
    real_model = randomize_weights(RelightVidUNet.from_config(SMALL), seed=0).to(dtype).eval()
    real = trace_peak(real_model, unet_call(*shape, dtype, False), fake=False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as profile:
        with torch.no_grad():
            unet_call(*shape, dtype, False)(real_model)
    # Each event's own allocations minus releases, in time order: an operator's total would also hold its
    # children's, and releases outside any operator come as "[memory]" events. The granularity is one
    # operator, so a buffer an operator makes and frees inside itself is not seen.
    live = peak = 0
    for event in sorted(profile.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    weights = sum(t.numel() * t.element_size() for t in [*real_model.parameters(), *real_model.buffers()])
    print(f"small config ({SMALL['block_out_channels']}), batch {shape[0]} × {shape[1]} frames × {shape[2]}², {dtype}")
    print("| method | weights (MiB) | peak (MiB) | activations (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for name, weight_bytes, peak_bytes in (
        ("fake-tensor trace (the estimate)", fake.weights, fake.peak),
        ("same tracer, real CPU tensors", real.weights, real.peak),
        ("torch.profiler CPU allocations (+ weights)", weights, weights + peak),
    ):
        print(f"| {name} | {weight_bytes / 2**20:.1f} | {peak_bytes / 2**20:.1f} | {(peak_bytes - weight_bytes) / 2**20:.1f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, help="checkout of Aleafy/RelightVid (kept outside this repository)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--check", action="store_true", help="validate the estimate on a small config and stop")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="only the rows whose name contains one of these")
    args = parser.parse_args(argv)
    if args.official is not None and not (args.official / "modules" / "video_unet_temporal" / "unet.py").is_file():
        parser.error(f"--official {args.official} is not a checkout of Aleafy/RelightVid (no modules/video_unet_temporal/unet.py)")
    diffusers_logging.set_verbosity_error()
    if args.check:
        check(torch.float32 if args.dtype == "fp32" else DTYPES[args.dtype])
        return
    print(f"estimated peak memory, {args.dtype}, weights included (fake-tensor trace; not a GPU measurement)")
    print("| case | ours (GiB) | of which weights | peak in | official (GiB) | target |")
    print("| --- | ---: | ---: | --- | ---: | --- |")
    for name, ours_fn, official_fn in rows(args):
        if args.only and not any(text in name for text in args.only):
            continue
        result = ours_fn()
        if isinstance(official_fn, str):  # what the official code does instead, in words
            official_text = official_fn
        else:
            official_text = gib(official_fn().peak) if official_fn else ("same code path" if "VAE" in name else "—")
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≤ {target} {'met' if result.peak / GIB <= target else 'MISSED'}"
        print(f"| {name} | {gib(result.peak)} | {gib(result.weights)} | {result.peak_module or '—'} | {official_text} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
