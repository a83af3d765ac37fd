"""What a batch costs on Ray: the same tiny-model jobs in one process and on a local Ray cluster with 1 and 2 workers.

Every run is ``relightvid batch`` in a fresh process, as a user starts it, timed from start to exit (Python,
torch and model loading included). The Ray runs join a cluster started once beforehand (``ray.cluster_utils``,
one node holding this machine's CPUs), so Ray's own start is not charged to them; Ray Data's planning, the
workers' processes and their model loading are. Prints:

* wall time of each run, the jobs' own time (the ``seconds`` of ``results.jsonl``) and the workers' resident
  memory from their first to their last job;
* Ray's overhead per job and its fixed cost per batch, from a short and a long batch (twice the jobs): each
  extra job's seconds on 1 worker against in this process, the same CPUs serving both;
* the speed-up of 2 workers over 1 per extra job (1 worker holds every CPU, each of 2 holds half);
* a projection — labelled as one, nothing here runs on a GPU — of 1,000 clips of 16 × 512² on 8 GPUs for a few
  assumed GPU seconds per clip (``bench/bench_gpu.py`` measures that figure on a GPU), from the measured overhead
  per job and fixed cost per batch (one worker per GPU: each has its card to itself).

    python bench/bench_batch.py                 # 8 and 16 jobs of 12 frames, 64², 8 steps, 2 runs each (~8 min)
    python bench/bench_batch.py --jobs 16 --steps 12
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ray.cluster_utils import Cluster

from relightvid_core.demo import procedural_background, procedural_clip, write_tiny_models
from relightvid_core.model_files import MERGED_NAME, convert_to_merged
from relightvid_core.models import TINY
from relightvid_core.video_io import write_mask_folder, write_video

SIZE = 64
PROJECTED_CLIPS = 1000
PROJECTED_GPUS = 8
# Per 16 x 512² clip of 20 steps, assumptions, not measurements: one run is about 1.06 PFLOP in the U-Net
# (docs/official_code.md §f), 10 s at 100 TFLOP/s sustained.
ASSUMED_GPU_SECONDS = (10.0, 30.0, 60.0)


def make_jobs(folder: Path, jobs: int, frames: int, steps: int) -> tuple[Path, Path]:
    """A tiny models folder and a manifest of ``jobs`` rows over one procedural clip."""
    models = folder / "models"
    files = write_tiny_models(models)
    convert_to_merged(files, models / MERGED_NAME, config=TINY)
    clip, masks = procedural_clip(frames, SIZE)
    write_video(folder / "clip.mp4", clip, 8.0)
    write_mask_folder(folder / "mask", masks)
    write_video(folder / "bg.mp4", procedural_background(frames, SIZE), 8.0)
    rows = [
        {"input": "clip.mp4", "mask": "mask", "bg_cond": "bg.mp4", "output": f"o{k}.mp4", "seed": k, "steps": steps}
        for k in range(jobs)
    ]
    manifest = folder / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return models, manifest


def run(manifest: Path, models: Path, out: Path, *extra: str) -> dict:
    """One ``relightvid batch`` process: its wall time and what results.jsonl says of its jobs."""
    command = [sys.executable, "-m", "relightvid_core", "batch", str(manifest), "--out", str(out)]
    command += ["--models", str(models), "--no-download", "--no-progress", "--size-policy", "cover"]
    command += ["--width", str(SIZE), "--height", str(SIZE), *extra]
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{finished.stderr}")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    memory: dict[int, list[float]] = {}
    for record in sorted(records, key=lambda r: r["finished"]):
        memory.setdefault(record["worker"]["pid"], []).append(record["memory_mb"])
    return {
        "wall": wall,
        "job_seconds": [record["seconds"] - record.get("load_seconds", 0.0) for record in records],
        "memory": memory,
    }


def describe(name: str, result: dict) -> str:
    """One table row; ``name`` may hold several cells."""
    jobs = result["job_seconds"]
    growth = ", ".join(f"{values[0]:.0f}→{values[-1]:.0f}" for values in result["memory"].values())
    return (
        f"| {name} | {result['wall']:.1f} | {statistics.median(jobs):.2f} | {sum(jobs):.1f} | "
        f"{len(result['memory'])} | {growth} |"
    )


def marginal(short: dict, long: dict, extra_jobs: int) -> float:
    """Seconds each job beyond the first batch's adds: the fixed costs (start, model loading) cancel out."""
    return (long["wall"] - short["wall"]) / extra_jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8, help="jobs of the short batch; the long one has twice as many")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each case; the fastest is kept")
    args = parser.parse_args()
    cpus = os.cpu_count() or 2
    runs: dict[str, dict[int, dict]] = {}

    def keep_fastest(name: str, jobs: int, result: dict) -> None:
        """Several runs of one case: the fastest stands for it (a busy machine only ever slows a run down)."""
        best = runs.setdefault(name, {}).get(jobs)
        if best is None or result["wall"] < best["wall"]:
            runs[name][jobs] = result

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for jobs in (args.jobs, 2 * args.jobs):
            make_jobs(folder / str(jobs), jobs, args.frames, args.steps)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "include_dashboard": False})
        logging.getLogger("ray").setLevel(logging.ERROR)
        try:
            # Cases alternate within each repeat, so a slow spell of the machine hits them alike.
            for repeat in range(args.repeats):
                for jobs in (args.jobs, 2 * args.jobs):
                    models, manifest = folder / str(jobs) / "models", folder / str(jobs) / "jobs.jsonl"
                    keep_fastest("in this process", jobs, run(manifest, models, folder / f"{jobs}-{repeat}-here"))
                    for workers in (1, 2):
                        shape = ["--workers", str(workers), "--cpus-per-worker", str(cpus / workers)]
                        out = folder / f"{jobs}-{repeat}-ray{workers}"
                        result = run(manifest, models, out, "--ray", cluster.address, *shape)
                        keep_fastest(f"Ray, {workers} worker(s)", jobs, result)
        finally:
            cluster.shutdown()

    short, long = args.jobs, 2 * args.jobs
    print(
        f"jobs of {args.frames} frames at {SIZE}x{SIZE}, {args.steps} steps, tiny models, {cpus} CPUs, "
        f"fastest of {args.repeats} runs"
    )
    print()
    print(
        "| run | jobs | wall (s) | job, median (s) | jobs' own time (s) | workers "
        "| resident MiB per worker, first→last job |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, by_jobs in runs.items():
        for jobs, result in by_jobs.items():
            print(describe(f"{name} | {jobs}", result))
    here, one, two = (marginal(by_jobs[short], by_jobs[long], long - short) for by_jobs in runs.values())
    overhead = one - here
    fixed = runs["Ray, 1 worker(s)"][short]["wall"] - runs["in this process"][short]["wall"] - short * overhead
    speedup = one / two
    efficiency = speedup / 2
    print()
    print(f"seconds per extra job: in this process {here:.2f}, Ray 1 worker {one:.2f}, Ray 2 workers {two:.2f}")
    print(f"Ray's overhead per job (1 worker against in-process, same CPUs): {overhead:.2f} s")
    print(f"Ray's fixed cost per batch (Ray Data's start, worker processes): {fixed:.1f} s")
    print(
        f"speed-up of 2 workers over 1, per extra job: {speedup:.2f}x (efficiency {efficiency:.0%}; the 2 workers "
        f"share the same {cpus} CPUs the 1 worker had alone, so this measures Ray's dispatch, not added hardware)"
    )
    print()
    print(
        f"PROJECTION (not a measurement: no GPU ran here) of {PROJECTED_CLIPS:,} clips of 16 x 512² on "
        f"{PROJECTED_GPUS} GPUs, one worker per GPU (each with its own card, so no sharing as above), from the "
        f"measured overhead per job and fixed cost, for assumed GPU seconds per clip:"
    )
    for seconds in ASSUMED_GPU_SECONDS:
        busy = PROJECTED_CLIPS * (seconds + max(overhead, 0.0)) / PROJECTED_GPUS
        print(f"  {seconds:5.0f} s per clip → {(busy + max(fixed, 0.0)) / 3600:.2f} h")


if __name__ == "__main__":
    main()
