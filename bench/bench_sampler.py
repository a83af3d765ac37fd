"""Cost of one sampling step: plain 3-way guidance, the IIE ensemble and context windows.

Times the guided model function a step evaluates (all of its U-Net calls; scheduler maths is negligible),
cases interleaved over the repeats so a busy machine slows them alike, median per case. Peak memory of
one step is measured in a fresh process per case (CPU: resident-set growth, polled; CUDA:
``max_memory_allocated`` above the weights). Prints a markdown table and the checked targets:

* IIE with N factors shares the unconditional branch: 1 + 2N U-Net items per step, against 3N for a naive
  loop of N plain 3-way steps; target ≤ (1 + 2N)/3N of the naive time (11/15 for N = 5).
* 64 frames in 16/4 windows (5 windows) cost within 10 % of the sum of their windows' single-call steps.

    python bench/bench_sampler.py                        # CPU, SMALL config, 16 frames of 16x16 latents
    python bench/bench_sampler.py --device cuda --dtype fp16 --config full   # 16 x 512² on the real-size config

SMALL keeps the released block pattern and a 768-wide text context at a quarter of the channels, so its
matrix products are compute-bound like the real network's; TINY (32 channels) is dominated by memory
traffic and per-op overhead, which favours small batches and says little about a real run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psutil
import torch
from diffusers.utils import logging as diffusers_logging

from relightvid_core import FULL_FBC, TINY, RelightVidUNet
from relightvid_core.sampling import Conditions, ContextWindows, Guidance, build_scheduler, guided_model, window_indices
from relightvid_core.model_files import DTYPES

WINDOW_TOLERANCE = 0.10
WINDOW = ContextWindows(length=16, overlap=4)
FRAMES = WINDOW.length  # the short clip is exactly one window, so its plain step is one window's cost
CLIP_TOKENS = 77
SMALL = {**FULL_FBC, "block_out_channels": [64, 128, 256, 256]}
CONFIGS = {"tiny": TINY, "small": SMALL, "full": FULL_FBC}
POLL_SECONDS = 0.002


@dataclass(frozen=True)
class Case:
    name: str
    frames: int
    factors: int = 1
    naive: bool = False
    window: ContextWindows | None = None
    max_batch: int | None = None


def cases(args: argparse.Namespace) -> list[Case]:
    return [
        Case("plain 3-way", FRAMES),
        Case(f"IIE N={args.factors}, shared uncond", FRAMES, factors=args.factors),
        Case(f"IIE N={args.factors}, naive {args.factors}x3-way", FRAMES, factors=args.factors, naive=True),
        Case(f"IIE N={args.factors}, shared, one call", FRAMES, factors=args.factors, max_batch=1 + 2 * args.factors),
        Case(f"{FRAMES} frames, windows {WINDOW.length}/{WINDOW.overlap}", FRAMES, window=WINDOW),
        Case(f"{args.long_frames} frames, windows {WINDOW.length}/{WINDOW.overlap}", args.long_frames, window=WINDOW),
    ]


def build_unet(args: argparse.Namespace) -> RelightVidUNet:
    """Random weights: timing and memory do not depend on the values."""
    config = CONFIGS[args.config]
    torch.manual_seed(0)
    return RelightVidUNet.from_config({**config, "in_channels": 12}).to(args.device, DTYPES[args.dtype]).eval()


def step_inputs(unet: RelightVidUNet, case: Case, size: int) -> tuple[torch.Tensor, torch.Tensor, Conditions]:
    """The scaled latents, the first DDPM timestep and the conditions of one step, on the U-Net's device."""
    parameter = next(unet.parameters())
    generator = torch.Generator().manual_seed(0)
    width = unet.config.cross_attention_dim

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(parameter.device)

    images = tuple(randn(1, case.frames, 8, size, size).to(parameter.dtype) for _ in range(case.factors))
    text, text_uncond = (randn(1, CLIP_TOKENS, width).to(parameter.dtype) for _ in range(2))
    cond = Conditions(images, text, text_uncond)
    return randn(1, case.frames, 4, size, size), build_scheduler("ddpm", 20).timesteps[0], cond


def naive_ensemble(unet: RelightVidUNet, guidance: Guidance):
    """The baseline IIE: one full 3-way step per factor (3N U-Net items), then the mean."""
    plain = guided_model(unet, guidance)

    def model_fn(x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        members = [plain(x, t, Conditions((image,), cond.text, cond.text_uncond)) for image in cond.images]
        return torch.stack(members).mean(dim=0)

    return model_fn


def step_function(unet: RelightVidUNet, case: Case):
    guidance = Guidance()
    return naive_ensemble(unet, guidance) if case.naive else guided_model(unet, guidance, case.window, case.max_batch)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def count_items(unet: RelightVidUNet, model_fn, inputs) -> tuple[int, int]:
    """(U-Net calls, U-Net batch items) of one step, counted with a forward pre-hook."""
    items = []
    handle = unet.register_forward_pre_hook(lambda module, args: items.append(args[0].shape[0]))
    try:
        model_fn(*inputs)
    finally:
        handle.remove()
    return len(items), sum(items)


def peak_memory(unet: RelightVidUNet, model_fn, inputs, device: str) -> int:
    """Bytes one step needs above what is held before it."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        model_fn(*inputs)
        return torch.cuda.max_memory_allocated() - before
    process = psutil.Process()
    before = peak = process.memory_info().rss
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(POLL_SECONDS)

    watcher = threading.Thread(target=poll)
    watcher.start()
    try:
        model_fn(*inputs)
    finally:
        done.set()
        watcher.join()
    return max(peak, process.memory_info().rss) - before


@torch.no_grad()
def child(args: argparse.Namespace) -> None:
    """Memory of one case, in this fresh process; prints JSON."""
    unet = build_unet(args)
    case = cases(args)[args.memory_case]
    peak = peak_memory(unet, step_function(unet, case), step_inputs(unet, case, args.size), args.device)
    print(json.dumps({"peak_bytes": peak}))


def measure_memory(args: argparse.Namespace, index: int) -> int:
    command = [sys.executable, __file__, "--memory-case", str(index), "--device", args.device, "--dtype", args.dtype,
               "--long-frames", str(args.long_frames), "--size", str(args.size),
               "--factors", str(args.factors), "--threads", str(args.threads), "--config", args.config]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_bytes"]


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small", help="U-Net size (full: 64x64 latents)")
    parser.add_argument("--long-frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=None, help="latent height = width (default 16; 64 for full)")
    parser.add_argument("--factors", type=int, default=5, help="IIE factors N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--memory-case", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or (64 if args.config == "full" else 16)
    torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()  # diffusers warns on every dtype cast, even with nothing to keep in fp32
    if args.memory_case is not None:
        child(args)
        return

    unet = build_unet(args)
    runs = [(case, step_function(unet, case), step_inputs(unet, case, args.size)) for case in cases(args)]
    counts = [count_items(unet, model_fn, inputs) for _, model_fn, inputs in runs]  # also the warm-up
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(args.repeats):
        for i, (_, model_fn, inputs) in enumerate(runs):
            synchronize(args.device)
            start = time.perf_counter()
            model_fn(*inputs)
            synchronize(args.device)
            seconds[i].append(time.perf_counter() - start)
    medians = [statistics.median(s) for s in seconds]
    memory = [measure_memory(args, i) for i in range(len(runs))]

    print(f"device {args.device}, {args.dtype}, {args.config} config, {args.size}x{args.size} latents, "
          f"{CLIP_TOKENS} tokens, {torch.get_num_threads()} threads, median of {args.repeats}\n")
    print("| case | frames | U-Net calls / step | U-Net items / step | time / step (s) | peak memory / step (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (case, _, _), (calls, items), median, peak in zip(runs, counts, medians, memory):
        print(f"| {case.name} | {case.frames} | {calls} | {items} | {median:.3f} | {peak / 2**20:.1f} |")

    plain, shared, naive, _, _, long = medians
    ratio = shared / naive
    iie_target = (1 + 2 * args.factors) / (3 * args.factors)
    windows = len(window_indices(args.long_frames, WINDOW.length, WINDOW.overlap))
    window_sum = windows * plain  # each window is one plain 16-frame step
    window_ratio = long / window_sum
    print()
    print(f"* IIE N={args.factors}: shared / naive = {ratio:.3f} (items {counts[1][1]} vs {counts[2][1]}; "
          f"target ≤ {iie_target:.3f}: {'met' if ratio <= iie_target else 'NOT met'})")
    print(f"* {args.long_frames} frames = {windows} windows: {long:.3f} s vs {windows} x {plain:.3f} s = "
          f"{window_sum:.3f} s, ratio {window_ratio:.3f} (target within ±{WINDOW_TOLERANCE:.0%}: "
          f"{'met' if abs(window_ratio - 1) <= WINDOW_TOLERANCE else 'NOT met'})")


if __name__ == "__main__":
    main()
