"""Peak memory of loading the full-size RelightVid U-Net from the three official files.

Writes a synthetic full-size set (random values, real shapes): an SD1.5 diffusers folder
(``unet/diffusion_pytorch_model.safetensors``, fp16), ``iclight_sd15_fbc.safetensors`` (fp16) and
``relvid_mm_sd15_fbc.pth`` (fp16 pickle, ``unet.`` prefix), then loads them in a fresh process per dtype
and prints its peak resident memory against the loaded model's size. Target: peak RSS ≤ 1.3 × model.

    python bench/bench_load.py --dir /tmp/relightvid-bench-weights --dtypes fp16 fp32
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
from relightvid_core.weights import expected_shapes

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
TARGET_RATIO = 1.3

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
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_synthetic_files(args.dir)
    print(f"synthetic files ready in {args.dir} ({time.perf_counter() - started:.0f} s)")
    print("| dtype | model size | peak RSS | ratio | target | load time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dtype in args.dtypes:
        result = measure(args.dir, dtype)
        ratio = result["peak_rss"] / result["model_bytes"]
        print(
            f"| {dtype} | {result['model_bytes'] / 2**30:.2f} GiB | {result['peak_rss'] / 2**30:.2f} GiB | "
            f"{ratio:.2f} | ≤ {TARGET_RATIO} {'met' if ratio <= TARGET_RATIO else 'MISSED'} | {result['seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
