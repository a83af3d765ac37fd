"""Peak memory of loading the full-size RelightVid U-Net from the three official files.

Writes a synthetic full-size set (random values, real shapes): an SD1.5 diffusers folder
(``unet/diffusion_pytorch_model.safetensors``, fp16), ``iclight_sd15_fbc.safetensors`` (fp16) and
``relvid_mm_sd15_fbc.pth`` (fp16 pickle, ``unet.`` prefix), then loads them in a fresh process per dtype
and prints its peak resident memory against the loaded model's size. Target: peak RSS ≤ 1.3 × model.

Load time is dominated by reading the files, so the files are read once before timing (into the page
cache; otherwise the first dtype measured pays the disk and the next ones do not — which is what made
fp16, measured first, look 2.2× slower than bf16 before), and the dtypes alternate over ``--repeats``
rounds, the minimum reported. Target: fp16 within 1.2× of bf16.

    python bench/bench_load.py --dir /tmp/relightvid-bench-weights --dtypes fp16 bf16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from relightvid_core import FULL_FBC
from relightvid_core.model_files import DTYPES
from relightvid_core.weights import expected_shapes

TARGET_RATIO = 1.3
TARGET_FP16_VS_BF16 = 1.2
READ_BLOCK = 64 * 2**20

CHILD = r"""
import json, resource, sys, time, torch
from relightvid_core import load_relightvid_unet
folder, dtype = sys.argv[1], getattr(torch, sys.argv[2])
start = time.perf_counter()
model = load_relightvid_unet(f"{folder}/sd15", f"{folder}/iclight_sd15_fbc.safetensors",
                             f"{folder}/relvid_mm_sd15_fbc.pth", dtype=dtype)
seconds = time.perf_counter() - start
model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "model_bytes": model_bytes, "seconds": seconds}))
"""


def _random(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return (torch.randn(shape, generator=generator) * 0.02).to(torch.float16)


def write_synthetic_files(folder: Path) -> None:
    """Write the three files with the official key layouts and full-size shapes (skipped if present)."""
    if (folder / "relvid_mm_sd15_fbc.pth").exists():
        return
    generator = torch.Generator().manual_seed(0)
    spatial4 = {k: s for k, s in expected_shapes({**FULL_FBC, "in_channels": 4}).items() if ".motion_modules." not in k}
    full = expected_shapes(FULL_FBC)
    (folder / "sd15" / "unet").mkdir(parents=True, exist_ok=True)
    save_file({k: _random(s, generator) for k, s in spatial4.items()}, str(folder / "sd15/unet/diffusion_pytorch_model.safetensors"))
    save_file({k: _random(full[k], generator) for k in spatial4}, str(folder / "iclight_sd15_fbc.safetensors"))
    motion = {"unet." + k: _random(s, generator) for k, s in full.items() if ".motion_modules." in k}
    torch.save(motion, folder / "relvid_mm_sd15_fbc.pth")


def warm_page_cache(folder: Path) -> None:
    """Read every file once so that every timed load finds them in the page cache alike."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            while handle.read(READ_BLOCK):
                pass


def measure(folder: Path, dtype: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(DTYPES[dtype]).split(".")[1]],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/relightvid-bench-weights"))
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp16", "bf16", "fp32"])
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds over the dtypes; minimum reported")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_synthetic_files(args.dir)
    warm_page_cache(args.dir)
    print(f"synthetic files ready and read once in {args.dir} ({time.perf_counter() - started:.0f} s)")
    runs: dict[str, list[dict]] = {dtype: [] for dtype in args.dtypes}
    for _ in range(args.repeats):
        for dtype in args.dtypes:
            runs[dtype].append(measure(args.dir, dtype))
    print("| dtype | model size | peak RSS | ratio | target | load time min (all runs) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dtype, results in runs.items():
        peak = max(r["peak_rss"] for r in results)
        model_bytes = results[0]["model_bytes"]
        ratio = peak / model_bytes
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in results)
        print(
            f"| {dtype} | {model_bytes / 2**30:.2f} GiB | {peak / 2**30:.2f} GiB | {ratio:.2f} | "
            f"≤ {TARGET_RATIO} {'met' if ratio <= TARGET_RATIO else 'MISSED'} | "
            f"{min(r['seconds'] for r in results):.1f} s ({seconds}) |"
        )
    if "fp16" in runs and "bf16" in runs:
        speed_ratio = min(r["seconds"] for r in runs["fp16"]) / min(r["seconds"] for r in runs["bf16"])
        verdict = "met" if speed_ratio <= TARGET_FP16_VS_BF16 else "MISSED"
        print(f"fp16 / bf16 load time (minima): {speed_ratio:.2f} (target ≤ {TARGET_FP16_VS_BF16}: {verdict})")


if __name__ == "__main__":
    main()
