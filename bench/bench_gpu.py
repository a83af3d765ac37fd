"""Seconds per sampling step, peak memory and FLOP/s of the full-size U-Net on one GPU, ours and official.

One step of the official sampler is one U-Net call on the three guidance branches (batch 3). Random
full-size weights (the values do not change the time), 16 frames of 64² latents (512² pixels), each
dtype in turn; ours and the official network (with ``--official``) alternate over the repeats and the
minimum is reported. Peak memory is ``torch.cuda.max_memory_allocated`` of the timed calls (weights
included); FLOPs are counted once on fake tensors with ``torch.utils.flop_counter`` (attention through
the math kernel, so its matrix products are counted too): 52.90 TFLOP for our full-size batch-3 step,
53.0 for the official one, which projects the text keys and values once per frame instead of per clip.
Runs in about 2–4 minutes on a recent GPU:

    python bench/bench_gpu.py --device cuda --official /work/official

On the CPU it runs the same way at a tiny size (``--config tiny --frames 2 --latent 8``), which the unit
tests do; peak memory is then not measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from relightvid_core import FULL_FBC, TINY, RelightVidUNet
from relightvid_core.models.memory import fake_weights
from relightvid_core.models.random_init import randomize_weights
from relightvid_core.model_files import DTYPES

CONFIGS = {"full": FULL_FBC, "small": {**FULL_FBC, "block_out_channels": [64, 128, 256, 256]}, "tiny": TINY}
TOKENS = 77


@dataclass(frozen=True)
class Result:
    implementation: str
    dtype: str
    seconds: float  # minimum over the repeats
    peak_bytes: int | None  # None where not measured (CPU)
    flops: float

    @property
    def flops_per_second(self) -> float:
        return self.flops / self.seconds


def count_flops(config: dict, batch: int, frames: int, latent: int) -> float:
    """FLOPs of one forward, counted on fake tensors (math attention, so its products are seen)."""
    with torch.device("meta"):
        model = RelightVidUNet.from_config(config).eval()
    with FakeTensorMode(), sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        fake_weights(model, "cpu")
        inputs = step_inputs(config, batch, frames, latent, torch.float32, "cpu")
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
    return float(counter.get_total_flops())


def step_inputs(config: dict, batch: int, frames: int, latent: int, dtype: torch.dtype, device: str):
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(batch, config["in_channels"], frames, latent, latent, generator=generator)
    context = torch.randn(batch, TOKENS, config["cross_attention_dim"], generator=generator)
    return sample.to(device, dtype), torch.full((batch,), 500, device=device), context.to(device, dtype)


def build(config: dict, official_dir: Path | None) -> dict[str, torch.nn.Module]:
    """Our U-Net with seeded random weights, and the official one with the same weights (fp32, CPU)."""
    ours = randomize_weights(RelightVidUNet.from_config(config), seed=0).eval()
    models = {"ours": ours}
    if official_dir is not None:
        sys.path.insert(0, str(official_dir))
        from modules.video_unet_temporal.unet import UNet3DConditionModel  # the official network

        official = UNet3DConditionModel.from_config(config).eval()
        official.load_state_dict(ours.state_dict())
        models["official"] = official
    return models


def call(name: str, model: torch.nn.Module, inputs) -> Callable[[], torch.Tensor]:
    sample, timesteps, context = inputs
    if name == "official":
        return lambda: model(sample, timesteps, encoder_hidden_states=context).sample
    return lambda: model(sample, timesteps, context)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(args: argparse.Namespace) -> list[Result]:
    config = CONFIGS[args.config]
    flops = count_flops(config, args.batch, args.frames, args.latent)
    cpu_models = build(config, args.official)
    results = []
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        models = {name: model.to(args.device, dtype) for name, model in cpu_models.items()}
        inputs = step_inputs(config, args.batch, args.frames, args.latent, dtype, args.device)
        runs = {name: call(name, model, inputs) for name, model in models.items()}
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, int | None] = {name: None for name in runs}
        with torch.no_grad():
            for run in runs.values():  # warm-up (kernel selection, allocator)
                run()
            for _ in range(args.repeats):
                for name, run in runs.items():  # alternating, so a busy device slows both alike
                    if args.device.startswith("cuda"):
                        torch.cuda.reset_peak_memory_stats()
                    synchronize(args.device)
                    start = time.perf_counter()
                    run()
                    synchronize(args.device)
                    times[name].append(time.perf_counter() - start)
                    if args.device.startswith("cuda"):
                        peaks[name] = max(peaks[name] or 0, torch.cuda.max_memory_allocated())
        for name in runs:
            results.append(Result(name, dtype_name, min(times[name]), peaks[name], flops))
        cpu_models = {name: model.to("cpu", torch.float32) for name, model in models.items()}
    return results


def print_table(args: argparse.Namespace, results: list[Result]) -> None:
    print(
        f"U-Net step ({args.config} config, batch {args.batch} × {args.frames} frames × {args.latent}² latents, "
        f"{args.device}, min of {args.repeats}); one step = {results[0].flops / 1e12:.2f} TFLOP"
    )
    print("| implementation | dtype | s / step | peak memory (GiB) | TFLOP/s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for r in results:
        peak = "not measured" if r.peak_bytes is None else f"{r.peak_bytes / 2**30:.2f}"
        print(f"| {r.implementation} | {r.dtype} | {r.seconds:.3f} | {peak} | {r.flops_per_second / 1e12:.3f} |")


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp16", "bf16"])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--batch", type=int, default=3, help="U-Net batch items (3 = one step's guidance branches)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--latent", type=int, default=64, help="latent side (pixels / 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--official", type=Path, help="checkout of Aleafy/RelightVid (kept outside this repository)")
    args = parser.parse_args(argv)
    for name in ("batch", "frames", "latent", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.official is not None and not (args.official / "modules" / "video_unet_temporal" / "unet.py").is_file():
        parser.error(f"--official {args.official} is not a checkout of Aleafy/RelightVid (no modules/video_unet_temporal/unet.py)")
    diffusers_logging.set_verbosity_error()
    results = measure(args)
    print_table(args, results)
    return results


if __name__ == "__main__":
    main()
