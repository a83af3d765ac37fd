"""Cost of the animated clip preview (nodes/previews/clip_preview.py) against one sampling step.

Run with ComfyUI's interpreter, ComfyUI's checkout on ``sys.path`` (``--comfyui``, default
``$COMFYUI_PATH``); the pack's own environment never imports ComfyUI:

    /path/to/comfy/python bench/bench_preview.py --comfyui /path/to/ComfyUI

For each previewer — ComfyUI's Latent2RGB and TAESD (ComfyUI's ``comfy/taesd/taesd.py`` with random
weights: its cost does not depend on their values) — prints the per-step cost of the preview:

* unbounded: every frame of x̂₀ decoded on the sampling thread (the preview before the bound);
* bounded: ``ClipPreview.show`` as the nodes use it — the time it holds the sampling thread, and the
  time its thread spends decoding that step's frames (at most ``PREVIEW_MAX_FRAMES``, evenly spaced);
* the time ComfyUI's server spends turning one sent frame into a JPEG (on its own thread, at the
  preview's frame rate whatever the step), for scale.

First at ``--frames`` (default 16 and 48) frames of ``--latent`` (default 64: 512² pictures); then at
the size of the step measurement, ``--step-frames`` of ``--step-latent`` (default 16 frames of 32²), where
one forward of ComfyUI's SD1.5 U-Net (in_channels 12 as RelightVid's, random init, fp32, no grad) on a
batch of frames × 3 guidance branches is timed, and the preview's share of that step is printed. Both
costs grow about in proportion to frames × pixels, but the ratio printed is the one measured at that
size, no more. The bounded share counts the thread's decoding in full, as if it never overlapped the
U-Net (on a CPU both share the cores; on a GPU the device).
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import statistics
import sys
import threading
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUB_PACK = "relightvid_bench_pack"
LIMIT = 0.05  # the limit: on by default only under 5 % of a step
NODE_ID = "bench"
# ComfyUI's SD1.5 U-Net (comfy/model_detection.py's SD15 with RelightVid's 12 input channels).
SD15_UNET = {
    "image_size": 32,
    "in_channels": 12,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4],
    # attention at resolutions 4, 2 and 1 (the first three levels), one transformer block each
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_spatial_transformer": True,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "legacy": False,
    "adm_in_channels": None,
}
TOKENS = 77
BRANCHES = 3  # text, image and unconditional guidance


def import_comfyui(path: Path, device: str):
    """ComfyUI's modules the preview uses, from its checkout (CPU-only when ``device`` is the CPU)."""
    sys.path.insert(0, str(path))
    import comfy.cli_args

    comfy.cli_args.args.cpu = device == "cpu"
    import latent_preview

    return latent_preview


def load_clip_preview() -> types.ModuleType:
    """nodes/previews/clip_preview.py under stand-in parent packages, without running the pack's own
    ``__init__`` files (they register nodes); relative imports still resolve inside the checkout."""
    for name, folder in (
        (STUB_PACK, REPO),
        (f"{STUB_PACK}.nodes", REPO / "nodes"),
        (f"{STUB_PACK}.nodes.previews", REPO / "nodes" / "previews"),
    ):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    return importlib.import_module(f"{STUB_PACK}.nodes.previews.clip_preview")


class TimedPreviewer:
    """A ComfyUI previewer that records how long each decode took and on which thread."""

    def __init__(self, previewer):
        self.previewer = previewer
        self.seconds: list[float] = []
        self.threads: set[str] = set()
        self.done = threading.Condition()

    def decode_latent_to_preview(self, x0):
        start = time.perf_counter()
        image = self.previewer.decode_latent_to_preview(x0)  # ends with a copy to the host
        elapsed = time.perf_counter() - start
        with self.done:
            self.seconds.append(elapsed)
            self.threads.add(threading.current_thread().name)
            self.done.notify_all()
        return image

    def wait_for(self, count: int) -> None:
        with self.done:
            self.done.wait_for(lambda: len(self.seconds) >= count)


class SinkRegistry:
    """ComfyUI's progress registry as the preview uses it, keeping nothing."""

    def ensure_entry(self, node_id):
        return {"value": 0, "max": 1}

    def update_progress(self, node_id, value, max_value, image=None):
        pass


def make_previewers(latent_preview, device: str) -> dict:
    import comfy.latent_formats
    import torch
    from comfy.taesd.taesd import TAESD

    sd15 = comfy.latent_formats.SD15()
    latent2rgb = latent_preview.Latent2RGBPreviewer(sd15.latent_rgb_factors, sd15.latent_rgb_factors_bias)
    taesd = TAESD(latent_channels=4)
    torch.manual_seed(0)
    with torch.no_grad():  # its layers are built without initialisation: give them finite values
        for parameter in taesd.parameters():
            parameter.normal_(0.0, 0.05)
    taesd = taesd.to(device)
    return {
        "latent2rgb": latent2rgb,
        "taesd": latent_preview.TAESDPreviewerImpl(taesd),
    }


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def latents(frames: int, size: int, device: str):
    import torch

    generator = torch.Generator().manual_seed(frames * 1000 + size)
    return torch.randn(frames, 4, size, size, generator=generator).to(device)


def unbounded_seconds(previewer, x0) -> float:
    """Every frame decoded on the calling thread, as the preview did before the bound."""
    import torch

    synchronize(str(x0.device))
    start = time.perf_counter()
    with torch.inference_mode():
        for frame in x0:
            previewer.decode_latent_to_preview(frame[None].float())
    return time.perf_counter() - start


def bounded_seconds(module, previewer, x0, device: str) -> tuple[float, float, int]:
    """A step through ``ClipPreview`` after a first one (thread started, warm): (seconds in ``show``
    on this thread, seconds the preview thread spent decoding the step's frames, frames decoded)."""
    import torch

    timed = TimedPreviewer(previewer)
    module.latent_preview.get_previewer = lambda _device, _format: timed
    count = len(range(0, x0.shape[0], module.preview_stride(x0.shape[0])))
    with module.ClipPreview(torch.device(device)) as preview, torch.inference_mode():
        assert preview.active, "the preview stayed off: no previewer or no node context"
        preview.show(x0)
        timed.wait_for(count)
        following = x0.flip(0)  # the next step's x̂₀
        synchronize(device)
        start = time.perf_counter()
        preview.show(following)
        shown = time.perf_counter() - start
        timed.wait_for(2 * count)
    assert len(timed.seconds) == 2 * count
    assert threading.main_thread().name not in timed.threads
    return shown, sum(timed.seconds[count:]), count


def jpeg_seconds(size: int, max_size: int, repeats: int = 20) -> float:
    """What ComfyUI's server does with each sent frame (server.py's send_image_with_metadata), for a
    picture of noise (the slowest to compress) of the clip's size."""
    import numpy as np
    from PIL import Image, ImageOps

    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    start = time.perf_counter()
    for _ in range(repeats):
        shown = ImageOps.contain(image, (max_size, max_size), Image.Resampling.BILINEAR)
        shown.save(io.BytesIO(), format="JPEG", quality=95, compress_level=1)
    return (time.perf_counter() - start) / repeats


def preview_costs(module, previewers: dict, frames: int, size: int, args) -> dict:
    """Median over ``--repeats`` of each previewer's costs at one clip size; prints them."""
    x0 = latents(frames, size, args.device)
    costs = {}
    for name, previewer in previewers.items():
        unbounded = [unbounded_seconds(previewer, x0) for _ in range(args.repeats)]
        bounded = [bounded_seconds(module, previewer, x0, args.device) for _ in range(args.repeats)]
        shown = statistics.median(b[0] for b in bounded)
        decoded = statistics.median(b[1] for b in bounded)
        count = bounded[0][2]
        costs[name] = (statistics.median(unbounded), shown + decoded)
        print(
            f"  {name:<10}  unbounded {1e3 * costs[name][0]:9.1f} ms/step ({frames} frames)"
            f"   bounded: show() {1e3 * shown:7.3f} ms on the sampling thread"
            f" + {1e3 * decoded:8.1f} ms decoding on the preview thread ({count} frames)"
        )
    max_size = module.latent_preview.MAX_PREVIEW_RESOLUTION
    jpeg = jpeg_seconds(8 * size, max_size)
    print(
        f"  ComfyUI's server, per frame sent: {1e3 * jpeg:.1f} ms to make a JPEG of at most"
        f" {max_size}² (its own thread; {module.PREVIEW_FRAME_RATE:g} frames a second)"
    )
    return costs


def unet_step_seconds(frames: int, size: int, args) -> float:
    """One forward of ComfyUI's SD1.5 U-Net on frames × 3 branches of ``size``² latents."""
    import torch
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(0)
    start = time.perf_counter()
    unet = UNetModel(**SD15_UNET, dtype=torch.float32, device=args.device)
    with torch.no_grad():  # layers are built without initialisation: give them finite values
        for parameter in unet.parameters():
            parameter.normal_(0.0, 0.02)
    print(
        f"  U-Net built in {time.perf_counter() - start:.1f} s"
        f" ({sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M parameters)"
    )

    def forward(batch: int) -> float:
        x = torch.randn(batch, SD15_UNET["in_channels"], size, size, device=args.device)
        timesteps = torch.full((batch,), 500.0, device=args.device)
        context = torch.randn(batch, TOKENS, SD15_UNET["context_dim"], device=args.device)
        synchronize(args.device)
        start = time.perf_counter()
        with torch.no_grad():
            unet(x, timesteps, context=context)
        synchronize(args.device)
        return time.perf_counter() - start

    forward(BRANCHES)  # warm-up on one frame's branches
    return forward(frames * BRANCHES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--comfyui",
        type=Path,
        default=os.environ.get("COMFYUI_PATH"),
        help="ComfyUI's checkout (default $COMFYUI_PATH)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 48])
    parser.add_argument("--latent", type=int, default=64, help="latent side (64: 512²)")
    parser.add_argument("--step-frames", type=int, default=16)
    parser.add_argument("--step-latent", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.comfyui is None:
        parser.error("give --comfyui PATH or set COMFYUI_PATH")

    latent_preview = import_comfyui(args.comfyui, args.device)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    module = load_clip_preview()
    module.get_executing_context = lambda: types.SimpleNamespace(node_id=NODE_ID)
    module.get_progress_state = SinkRegistry
    previewers = make_previewers(latent_preview, args.device)
    for previewer in previewers.values():  # warm-up
        unbounded_seconds(previewer, latents(1, args.latent, args.device))
    print(
        f"device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__};"
        f" PREVIEW_MAX_FRAMES = {module.PREVIEW_MAX_FRAMES}, fp32 latents"
    )

    for frames in args.frames:
        print(f"preview, {frames} frames of {args.latent}x{args.latent} latents:")
        preview_costs(module, previewers, frames, args.latent, args)

    size, frames = args.step_latent, args.step_frames
    print(f"sampling step, {frames} frames of {size}x{size} latents:")
    costs = preview_costs(module, previewers, frames, size, args)
    step = unet_step_seconds(frames, size, args)
    print(f"  one SD1.5 U-Net forward, batch {frames} x {BRANCHES} branches: {step:.2f} s (measured)")
    verdicts = []
    for name, (unbounded, bounded) in costs.items():
        verdicts.append(f"{name} {100 * unbounded / step:.3f} % unbounded, {100 * bounded / step:.3f} % bounded")
    slowest = max(bounded / step for _, bounded in costs.values())
    on = "on by default" if slowest < LIMIT else "off by default"
    print(
        f"verdict at {frames} frames of {size}x{size} latents ({args.device}):"
        f" preview cost per step as % of one step — {'; '.join(verdicts)};"
        f" bounded under {100 * LIMIT:.0f} % for every previewer: {slowest < LIMIT} → {on}"
    )


if __name__ == "__main__":
    main()
