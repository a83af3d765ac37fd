"""One U-Net forward of ours against the official implementation: same config, weights and inputs, CPU fp32.

The official code is not part of this project; clone it beside the project and point ``--official`` at it:

    git clone https://github.com/Aleafy/RelightVid /tmp/RelightVid
    python bench/bench_unet_vs_official.py --official /tmp/RelightVid --batch 3 --frames 8 --latent 32

Both networks get the full-size RelightVid config and the same seeded random weights; the runs alternate
(official, ours, official, ...) so background load affects both alike, and the minimum of the repeats is
reported. The outputs must agree (the maximum absolute difference is printed). Target: ours ≤ 0.75 × official.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from relightvid_core import FULL_FBC, RelightVidUNet
from relightvid_core.models.random_init import randomize_weights

TARGET_RATIO = 0.75


def build_models(official_dir: Path):
    sys.path.insert(0, str(official_dir))
    from modules.video_unet_temporal.unet import UNet3DConditionModel  # the official network

    ours = randomize_weights(RelightVidUNet.from_config(FULL_FBC), seed=0).eval()
    official = UNet3DConditionModel.from_config(FULL_FBC).eval()
    official.load_state_dict(ours.state_dict())
    return ours, official


def timed(fn) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of Aleafy/RelightVid")
    parser.add_argument("--batch", type=int, default=3, help="batch items (3 = the three guidance branches)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--latent", type=int, default=32, help="latent side (pixels / 8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ours, official = build_models(args.official)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(args.batch, 12, args.frames, args.latent, args.latent, generator=generator)
    context = torch.randn(args.batch, 77, FULL_FBC["cross_attention_dim"], generator=generator)
    timesteps = torch.full((args.batch,), 500)

    runs = {
        "official": lambda: official(sample, timesteps, encoder_hidden_states=context).sample,
        "ours": lambda: ours(sample, timesteps, context),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    with torch.no_grad():
        for name, run in runs.items():  # warm-up
            outputs[name] = run()
        for _ in range(args.repeats):
            for name, run in runs.items():
                seconds, _ = timed(run)
                times[name].append(seconds)

    difference = (outputs["ours"] - outputs["official"]).abs().max().item()
    ratio = min(times["ours"]) / min(times["official"])
    print(
        f"full-size U-Net, fp32 CPU, {args.threads} threads, batch {args.batch} × {args.frames} frames × "
        f"{args.latent}² latents, {args.repeats} alternating repeats"
    )
    print("| implementation | min (s) | median (s) |")
    print("| --- | --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {min(values):.2f} | {statistics.median(values):.2f} |")
    print(f"ratio ours/official (min): {ratio:.3f} (target ≤ {TARGET_RATIO}); max |Δ output| {difference:.2e}")


if __name__ == "__main__":
    main()
