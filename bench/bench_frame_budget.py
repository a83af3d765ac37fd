"""Peak memory of the clip inputs: the frame-budget path against the whole-clip path.

    COMFYUI_PATH=/path/to/ComfyUI /path/to/comfy/python bench/bench_frame_budget.py \\
        [--frames 300] [--whole-frames 300] [--keep 16] [--size 512] [--width 1920] [--height 1080]

Writes a synthetic clip (moving gradients, libx264) of ``--frames`` frames at ``--width`` x ``--height`` and a
PNG mask per frame, then runs the pack's nodes up to the sampler's inputs — RelightVid Load Mask Sequence,
RelightVid Foreground and RelightVid Background Video, keeping ``--keep`` frames at ``--size``² — each path in
a fresh process, and prints its peak RSS:

* frame budget: ComfyUI's VIDEO (``VideoFromFile``, what core Load Video gives) straight into the nodes;
* whole clip:  the same VIDEO through ``get_components()`` (what core Get Video Components does) into the
  nodes' ``images`` inputs (the background reuses the decoded clip), on a clip of ``--whole-frames`` frames.

The sampler is left out: its memory depends on the kept frames and the model, not on the source clip.
A baseline process (imports only) is measured too. ComfyUI is needed only for ``VideoFromFile``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK = "relightvid_bench_pack"
MASK_FOLDER = "mask"
FPS = 30


def write_clip(path: Path, frames: int, width: int, height: int) -> None:
    """A moving two-colour gradient, one frame at a time (never the whole clip in memory)."""
    import av
    import numpy as np

    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for t in range(frames):
            red = (xs + 3 * t) % 256 + 0 * ys
            green = (ys + 2 * t) % 256 + 0 * xs
            blue = np.full((height, width), (5 * t) % 256, np.float32)
            image = np.stack([red, green, blue], axis=-1).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write_masks(folder: Path, frames: int, width: int, height: int) -> None:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:height, 0:width]
    for t in range(frames):
        disc = ((xs - width / 2 - t) ** 2 + (ys - height / 2) ** 2) < (height / 3) ** 2
        cv2.imwrite(str(folder / f"{t:04d}.png"), disc.astype(np.uint8) * 255)


def load_pack():
    spec = importlib.util.spec_from_file_location(PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK] = module
    spec.loader.exec_module(module)
    return module.NODE_CLASS_MAPPINGS


class FakeVAE:
    """Never called before the sampler; the Foreground only keeps it for the sampler's encoding."""


def run_path(path: str, clip: str, keep: int, size: int) -> dict:
    """Run one path in this process; return its peak RSS."""
    nodes = load_pack()  # first, so the pack runs without ComfyUI's model management
    if path != "baseline":
        sys.path.insert(0, os.environ["COMFYUI_PATH"])
        from comfy_api.latest._input_impl.video_types import VideoFromFile

        video = VideoFromFile(clip)
        budget = {"skip_first_frames": 0, "frame_stride": 1, "max_frames": keep}
        (masks, _count) = nodes["RelightVidLoadMaskSequence"]().load(f"{MASK_FOLDER}/%04d.png", **budget, video=video)
        source = {"video": video} if path == "frame_budget" else {"images": video.get_components().images}
        settings = {"size_policy": "cover", "width": size, "height": size, "gray": "official_128", "grow": 0}
        foreground, *_ = nodes["RelightVidForeground"]().prepare(
            FakeVAE(), **settings, feather=0.0, invert_mask=False, **budget, mask=masks, **source
        )
        background, _ = nodes["RelightVidBackground"]().fit(foreground, "loop", "cover", False, **budget, **source)
        assert foreground.frames.shape == (keep, size, size, 3) and background.frames.shape[0] == keep
    return {"path": path, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def measure(path: str, workdir: Path, clip: Path, keep: int, size: int) -> dict:
    command = [sys.executable, __file__, "--child", path, "--clip", str(clip), "--keep", str(keep), "--size", str(size)]
    completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames of the clip for the frame-budget path")
    parser.add_argument("--whole-frames", type=int, nargs="+", default=[300], help="clip lengths for the whole path")
    parser.add_argument("--keep", type=int, default=16, help="frames kept")
    parser.add_argument("--size", type=int, default=512, help="output side")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_path(args.child, args.clip, args.keep, args.size)))
        return 0
    if "COMFYUI_PATH" not in os.environ:
        print("set COMFYUI_PATH to a ComfyUI checkout (for its VideoFromFile)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="relightvid-bench-") as folder:
        workdir = Path(folder)
        write_masks(workdir / MASK_FOLDER, max(args.frames, *args.whole_frames), args.width, args.height)
        print(f"{args.width}x{args.height} synthetic clip, {args.keep} frames kept at {args.size}x{args.size}")
        print("| path | source frames | peak RSS (GiB) |\n| --- | ---: | ---: |", flush=True)
        rows = [measure("baseline", workdir, workdir / "none.mp4", args.keep, args.size) | {"frames": 0}]
        print_row(rows[-1])
        for path, lengths in (("frame_budget", [args.frames]), ("whole_clip", args.whole_frames)):
            for frames in lengths:
                clip = workdir / f"clip_{frames}.mp4"
                if not clip.exists():
                    write_clip(clip, frames, args.width, args.height)
                # The mask folder must hold exactly one mask per frame of the clip.
                for extra in sorted((workdir / MASK_FOLDER).glob("*.png"))[frames:]:
                    extra.rename(workdir / f"spare_{extra.name}")
                rows.append(measure(path, workdir, clip, args.keep, args.size) | {"frames": frames})
                print_row(rows[-1])
                for spare in workdir.glob("spare_*.png"):
                    spare.rename(workdir / MASK_FOLDER / spare.name.removeprefix("spare_"))
    return 0


def print_row(row: dict) -> None:
    print(f"| {row['path']} | {row['frames']} | {row['peak_rss_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
