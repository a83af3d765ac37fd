"""One U-Net forward of ours against the official implementation: same config, weights and inputs, CPU fp32.

The official code is not part of this project; check it out outside the project and point ``--official`` at it:

    git clone https://github.com/Aleafy/RelightVid /work/official
    python bench/bench_unet_vs_official.py --official /work/official --batch 3 --frames 8 --latent 32
    python bench/bench_unet_vs_official.py --official /work/official --sweep --minutes 20

Both networks get the same config and seeded random weights; the runs alternate (official, ours,
official, ...) so background load affects both alike, and the ratio of the minima is reported. The outputs
must agree (the maximum absolute difference is printed). ``--sweep`` runs a table of channel widths
(small / medium / full), batches 1 and 3, 8 and 16 frames and 16²–32² latents, cheapest first, and stops
starting new rows after ``--minutes``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging

from relightvid_core import FULL_FBC, RelightVidUNet
from relightvid_core.models.random_init import randomize_weights

TARGET_RATIO = 1.0
WIDTHS = {
    "small": [64, 128, 256, 256],
    "medium": [160, 320, 640, 640],
    "full": FULL_FBC["block_out_channels"],
}
# (width, batch, frames, latent side), cheapest first; a sweep stops starting rows when its time is up.
SWEEP = [
    ("small", 1, 8, 16),
    ("small", 3, 8, 16),
    ("small", 1, 16, 16),
    ("small", 3, 16, 16),
    ("small", 1, 8, 32),
    ("small", 3, 16, 32),
    ("medium", 1, 8, 16),
    ("medium", 3, 8, 16),
    ("medium", 1, 16, 32),
    ("full", 1, 8, 16),
    ("medium", 3, 16, 32),
    ("full", 3, 8, 16),
    ("full", 1, 8, 32),
    ("small", 1, 8, 64),
]


@dataclass(frozen=True)
class Row:
    width: str
    batch: int
    frames: int
    latent: int
    official: list[float]
    ours: list[float]
    difference: float

    @property
    def ratio(self) -> float:
        return min(self.ours) / min(self.official)


def build_models(official_dir: Path, config: dict):
    sys.path.insert(0, str(official_dir))
    from modules.video_unet_temporal.unet import UNet3DConditionModel  # the official network

    ours = randomize_weights(RelightVidUNet.from_config(config), seed=0).eval()
    official = UNet3DConditionModel.from_config(config).eval()
    official.load_state_dict(ours.state_dict())
    return ours, official


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(
    official_dir: Path, width: str, batch: int, frames: int, latent: int, repeats: int, min_seconds: float = 0.0
) -> Row:
    config = {**FULL_FBC, "block_out_channels": WIDTHS[width]}
    ours, official = build_models(official_dir, config)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(batch, 12, frames, latent, latent, generator=generator)
    context = torch.randn(batch, 77, config["cross_attention_dim"], generator=generator)
    timesteps = torch.full((batch,), 500)
    runs = {
        "official": lambda: official(sample, timesteps, encoder_hidden_states=context).sample,
        "ours": lambda: ours(sample, timesteps, context),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.no_grad():
        outputs = {name: run() for name, run in runs.items()}  # warm-up
        # At least ``repeats`` rounds, more until each side has run ``min_seconds``: a 2-second forward on a
        # shared machine varies by ±15 %, so short rows need more samples for a stable minimum.
        while len(times["ours"]) < repeats or min(sum(t) for t in times.values()) < min_seconds:
            for name, run in runs.items():
                times[name].append(timed(run))
    difference = (outputs["ours"] - outputs["official"]).abs().max().item()
    return Row(width, batch, frames, latent, times["official"], times["ours"], difference)


def print_row(row: Row) -> None:
    verdict = "" if row.ratio <= TARGET_RATIO else " (slower)"
    print(
        f"| {row.width} | {row.batch} × {row.frames} × {row.latent}² | {min(row.official):.3f} / "
        f"{statistics.median(row.official):.3f} | {min(row.ours):.3f} / {statistics.median(row.ours):.3f} | "
        f"{row.ratio:.3f}{verdict} | {row.difference:.1e} | {len(row.ours)} |",
        flush=True,
    )


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of Aleafy/RelightVid")
    parser.add_argument("--width", choices=sorted(WIDTHS), default="full", help="channel widths of a single run")
    parser.add_argument("--batch", type=int, default=3, help="batch items (3 = the three guidance branches)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--latent", type=int, default=32, help="latent side (pixels / 8)")
    parser.add_argument("--repeats", type=int, default=3, help="at least this many alternating rounds")
    parser.add_argument(
        "--min-seconds", type=float, default=30.0, help="more rounds until each side has run this long in all"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sweep", action="store_true", help="run the sweep table instead of one shape")
    parser.add_argument("--minutes", type=float, default=20.0, help="sweep: start no new row after this")
    parser.add_argument("--skip", type=int, default=0, help="sweep: leave out the first N rows (already measured)")
    args = parser.parse_args(argv)
    if not (args.official / "modules" / "video_unet_temporal" / "unet.py").is_file():
        parser.error(f"--official {args.official} is not a checkout of Aleafy/RelightVid (no modules/video_unet_temporal/unet.py)")
    if not 0 <= args.skip < len(SWEEP):
        parser.error(f"--skip must be between 0 and {len(SWEEP) - 1} (the sweep has {len(SWEEP)} rows)")
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (ratio of minima over alternating runs)")
    torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()
    shapes = SWEEP[args.skip:] if args.sweep else [(args.width, args.batch, args.frames, args.latent)]
    print(
        f"fp32 CPU, {args.threads} threads, at least {args.repeats} alternating repeats and {args.min_seconds:g} s per "
        "side; times in s (min / median)"
    )
    print("| widths | batch × frames × latent | official | ours | ours / official (min) | max abs. diff. | rounds |")
    print("| --- | --- | --- | --- | --- | --- | ---: |")
    started = time.perf_counter()
    rows = []
    for shape in shapes:
        if rows and time.perf_counter() - started > args.minutes * 60:
            print(f"(time is up after {len(rows)} of {len(shapes)} rows)")
            break
        rows.append(compare(args.official, *shape, args.repeats, args.min_seconds))
        print_row(rows[-1])
    return rows


if __name__ == "__main__":
    main()
