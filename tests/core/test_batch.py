"""``relightvid batch`` in its own process (the default, no Ray): manifests, checks before any model loads,
results, resuming, interruption, reproducibility and memory, on tiny models and synthetic clips."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _support.batch import (
    REPO,
    TINY_DEFAULTS,
    batch_args,
    by_row,
    clip_row,
    frames,
    partial_files,
    results,
    run_batch,
    snapshot,
    start_batch,
    write_clips,
    write_jsonl,
    write_tiny_models,
)
from safetensors.torch import load_file

import relightvid_core.model_files
from relightvid_core.batch.manifest import read_manifest
from relightvid_core.batch.plan import Planner, job_columns
from relightvid_core.cli import main
from relightvid_core.errors import InputError

CONTEXT = {"models": "tiny", "dtype": "auto"}  # the batch-wide settings every key includes


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"), 2)


def _defaults(**given) -> dict:
    """The per-job defaults ``relightvid batch`` passes when given ``given`` on its command line."""
    from relightvid_core.cli import build_parser

    words = ["batch", "m.jsonl", "--out", "o"]
    for name, value in given.items():
        words += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    args = vars(build_parser(["batch"]).parse_args(words))
    columns = set(job_columns())
    return {k: v for k, v in args.items() if k in columns}


def _plan(tmp_path: Path, rows: list[dict], **defaults):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    planner = Planner(_defaults(**defaults), tmp_path, tmp_path / "out", CONTEXT)
    return planner.plan(read_manifest(manifest, job_columns()))


# --- the manifest and its checks (no model) ---


def test_csv_and_json_lines_describe_the_same_jobs(tmp_path, clips):
    row = clip_row(clips[0], "a.mp4", seed=5, iie="0.8, 1.2", closed_loop="true", light_color="1 0.5 0.25")
    (tmp_path / "jobs.csv").write_text(
        ",".join(row) + "\n" + ",".join(f'"{value}"' for value in row.values()) + "\n", encoding="utf-8"
    )
    planner = Planner(_defaults(), tmp_path, tmp_path / "out", CONTEXT)
    from_csv = planner.plan(read_manifest(tmp_path / "jobs.csv", job_columns())).jobs[0]
    json_row = {**row, "iie": [0.8, 1.2], "closed_loop": True, "light_color": [1, 0.5, 0.25]}
    from_json = _plan(tmp_path, [json_row]).jobs[0]
    assert from_csv.options == from_json.options and from_csv.key == from_json.key
    assert from_json.options["iie"] == [0.8, 1.2] and from_json.options["closed_loop"] is True


def test_a_csv_header_naming_an_unknown_column_refuses_the_manifest(tmp_path):
    (tmp_path / "jobs.csv").write_text("input,output,stpes\na.mp4,a.mp4,3\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown column 'stpes': did you mean steps"):
        read_manifest(tmp_path / "jobs.csv", job_columns())


def test_each_bad_row_is_refused_alone_naming_row_and_column(tmp_path, clips):
    good = clip_row(clips[0], "ok.mp4")
    plan = _plan(
        tmp_path,
        [
            good,
            {**good, "output": "b.mp4", "stpes": 3},
            {**good, "output": "c.mp4", "dtype": "fp16"},
            {**good, "output": "d.mp4", "light": "left"},
            {**good, "output": "e.mp4", "overlap": 16},
            {**good, "output": "f.mp4", "steps": 2.5},
            {**good, "output": "/abs/g.mp4"},
            {**good, "output": "ok.mp4"},
            {**good, "output": "h.mp4", "mask": str(tmp_path / "nowhere")},
            {**good, "output": "i.mp4", "width": 100},
            {**good, "output": "j.avi"},
            {**good, "output": "k.mp4", "input": str(clips[0].masks / "0000.png")},
            {k: v for k, v in good.items() if k != "output"},
        ],
    )
    assert [job.row for job in plan.jobs] == [1]
    refused = {refusal.row: str(refusal) for refusal in plan.refused}
    assert refused[2] == (
        "row 2: unknown column 'stpes': did you mean steps? columns are relight's option names with _ for - "
        "(input, mask, bg_cond, prompt, seed, steps, ...) plus output."
    )
    assert refused[3].startswith("row 3, column dtype: is batch-wide") and "--dtype" in refused[3]
    assert refused[4] == "row 4, column light: this row also names bg_cond; give one lighting source per row."
    assert refused[5] == "row 5, column overlap: must be less than the window length (16), got 16."
    assert refused[6] == "row 6, column steps: expected a whole number, got '2.5'."
    assert refused[7].startswith("row 7, column output: must be a path inside the output folder")
    assert refused[8] == "row 8, column output: ok.mp4 is also written by row 1; give each row its own files."
    assert refused[9].startswith("row 9, column mask: mask folder") and "does not exist" in refused[9]
    assert refused[10].startswith("row 10, column width: width must be a positive multiple of 8")
    assert refused[11].startswith("row 11, column output: the output video") and ".mp4" in refused[11]
    assert refused[12].startswith("row 12, column input:") and "not a video" in refused[12]
    assert refused[13] == "row 13, column output: is missing; every row needs its output video, relative to --out."


def test_command_line_values_are_defaults_a_row_overrides_and_its_lighting_replaces(tmp_path, clips):
    row = clip_row(clips[0], "a.mp4")
    plan = _plan(
        tmp_path,
        [
            {k: v for k, v in row.items() if k != "bg_cond"},
            {**row, "output": "b.mp4", "steps": 3, "bg_flip": "false"},
        ],
        light="left",
        light_intensity=2.0,
        steps=5,
        bg_flip=True,
    )
    first, second = (job.options for job in plan.jobs)
    assert first["light"] == "left" and first["light_intensity"] == 2.0 and first["steps"] == 5
    assert first["bg_cond"] is None
    assert second["light"] is None and second["bg_cond"] == str(clips[0].background) and second["steps"] == 3
    assert second["bg_flip"] is False


def test_relative_paths_of_a_row_start_at_the_manifest_and_outputs_stay_in_out(tmp_path, clips):
    folder = clips[0].video.parent.parent
    manifest = write_jsonl(folder / "jobs.jsonl", [clip_row(clips[0], "deep/a.mp4", relative_to=folder)])
    out = tmp_path / "out"
    plan = Planner(_defaults(), folder, out, {}).plan(read_manifest(manifest, job_columns()))
    (job,) = plan.jobs
    assert job.options["input"] == str(clips[0].video) and job.options["output"] == str(out / "deep" / "a.mp4")
    assert job.output == "deep/a.mp4"


def test_a_row_without_seed_gets_one_drawn_and_its_key_does_not_depend_on_it(tmp_path, clips):
    first = _plan(tmp_path, [clip_row(clips[0], "a.mp4")]).jobs[0]
    second = _plan(tmp_path, [clip_row(clips[0], "a.mp4")]).jobs[0]
    assert first.seed_drawn and first.seed != second.seed and first.key == second.key
    seeded = _plan(tmp_path, [clip_row(clips[0], "a.mp4", seed=first.seed)]).jobs[0]
    assert not seeded.seed_drawn and seeded.key != first.key
    changed = _plan(tmp_path, [clip_row(clips[0], "a.mp4", steps=7)]).jobs[0]
    assert changed.key != first.key


def test_check_only_validates_and_writes_nothing(tmp_path, clips, models, capsys):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4"), clip_row(clips[0], "b.mp4", seed=-1)])
    assert run_batch(manifest, tmp_path / "out", models, "--check") == 1
    captured = capsys.readouterr()
    assert "row 2, column seed:" in captured.err and "1 ready, 1 refused; nothing was run" in captured.out
    assert not (tmp_path / "out").exists()


def test_an_unreadable_manifest_is_one_sentence(tmp_path, models, capsys):
    assert run_batch(tmp_path / "jobs.txt", tmp_path / "out", models) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("relightvid: error: the manifest") and ".jsonl" in err and "\n" not in err


# --- running ---


def test_good_jobs_run_bad_ones_fail_alone_and_every_result_is_recorded(tmp_path, clips, models, capsys):
    rows = [
        clip_row(clips[0], "a.mp4", seed=1),
        clip_row(clips[1], "b.mp4", text_scale=float("nan")),
        clip_row(clips[1], "sub/c.mp4", contact_sheet="sub/c.png", latent="latents/c.latent"),
    ]
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    assert run_batch(manifest, out, models) == 1
    captured = capsys.readouterr()
    assert "row 2, column text_scale: the value must be a finite number, got nan." in captured.err
    assert captured.out.strip().splitlines()[-1].startswith("batch: 3 jobs, 2 ok, 1 failed")
    records = by_row(out)
    assert records[1]["status"] == "ok" and records[1]["seed"] == 1 and records[1]["seed_drawn"] is False
    assert records[2] == {**records[2], "status": "failed", "output": "b.mp4", "seed": None}
    assert records[3]["status"] == "ok" and records[3]["seed_drawn"] is True
    for record in (records[1], records[3]):
        assert set(record) >= {"row", "status", "output", "error", "seed", "seconds", "worker", "settings"}
        assert record["worker"]["host"] and record["worker"]["device"] == "cpu" and record["seconds"] > 0
        assert (out / record["log"]).read_text().rstrip().splitlines()[-1].startswith("ok: wrote")
    assert records[3]["latent"] == "latents/c.latent" and records[1]["latent"] is None
    assert (out / "a.mp4").is_file() and (out / "sub" / "c.png").is_file() and not partial_files(out)
    assert load_file(out / "latents" / "c.latent")["latent_tensor"].shape[0] == records[3]["frames"]


def test_a_finished_batch_run_again_loads_no_model_and_changes_no_file(tmp_path, clips, models, monkeypatch, capsys):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4"), clip_row(clips[1], "b.mp4")])
    out = tmp_path / "out"
    assert run_batch(manifest, out, models) == 0
    before = snapshot(out)

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(relightvid_core.model_files, "load_components", no_loading)
    capsys.readouterr()
    assert run_batch(manifest, out, models) == 0
    assert snapshot(out) == before
    assert capsys.readouterr().out.strip() == f"nothing to do: 2 jobs, all done before (results in {out / 'results.jsonl'})"


def test_a_changed_setting_or_force_runs_a_job_again(tmp_path, clips, models):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4", seed=3)])
    out = tmp_path / "out"
    assert run_batch(manifest, out, models) == 0
    assert run_batch(manifest, out, models, "--text-scale", "5") == 0
    assert run_batch(manifest, out, models, "--text-scale", "5") == 0
    assert run_batch(manifest, out, models, "--text-scale", "5", "--force") == 0
    assert len(results(out)) == 3
    (out / "a.mp4").unlink()  # an output deleted by hand is made again
    assert run_batch(manifest, out, models, "--text-scale", "5") == 0
    assert len(results(out)) == 4 and (out / "a.mp4").is_file()


def test_a_job_gives_the_frames_relight_gives_with_the_same_options(tmp_path, clips, models):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4"), clip_row(clips[1], "b.mp4", seed=9)])
    out = tmp_path / "out"
    assert run_batch(manifest, out, models, "--iie", "0.8", "1.2") == 0
    drawn = by_row(out)[1]["seed"]
    for clip, name, seed in ((clips[0], "a.mp4", drawn), (clips[1], "b.mp4", 9)):
        single = tmp_path / f"relight-{name}"
        relight = ["relight", "--input", str(clip.video), "--mask", str(clip.masks), "--bg_cond", str(clip.background)]
        extra = ["--output_path", str(single), "--models", str(models), "--no-download", "--no-progress"]
        assert main([*relight, *extra, *TINY_DEFAULTS, "--iie", "0.8", "1.2", "--seed", str(seed)]) == 0
        # Decoded, not encoded, frames are compared: libx264 does not always give the same bytes for the same
        # frames (seen: the first frame's size differs now and then), which moves noise-like tiny-model frames
        # by about 0.6/255 on average.
        assert np.abs(frames(single) - frames(out / name)).mean() <= 1 / 255


def test_memory_of_a_worker_does_not_grow_from_job_to_job(tmp_path, clips, models):
    rows = [clip_row(clips[k % 2], f"o{k}.mp4", seed=k) for k in range(8)]
    out = tmp_path / "out"
    assert run_batch(write_jsonl(tmp_path / "jobs.jsonl", rows), out, models) == 0
    memory = [record["memory_mb"] for record in sorted(results(out), key=lambda r: r["row"])]
    # The first jobs warm allocator pools and caches; from then on the resident size stays put.
    assert max(memory[2:]) - memory[2] < 8.0, memory


def test_models_that_cannot_load_stop_the_batch_in_one_sentence(tmp_path, clips, capsys):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4")])
    assert run_batch(manifest, tmp_path / "out", tmp_path / "no-models") == 2
    err = capsys.readouterr().err
    assert err.startswith("relightvid: error: the models cannot be loaded on") and "model file(s) are missing" in err
    assert results(tmp_path / "out") == [] and not partial_files(tmp_path)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_batch_keeps_finished_jobs_and_a_rerun_does_only_the_rest(tmp_path, clips, models, stop):
    rows = [clip_row(clips[0], f"o{k}.mp4", seed=k, steps=12) for k in range(5)]
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    driver = start_batch(manifest, out, models)
    try:
        deadline = time.monotonic() + 300
        while not results(out) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        driver.send_signal(stop)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130 and err.strip().endswith("relightvid: interrupted")
    done = by_row(out)
    assert 1 <= len(done) < 5 and not partial_files(out)
    # Done means recorded: a job interrupted after its file was renamed but before its line was written is run
    # again (its file cannot be told from one of other settings), the recorded ones never are.
    outputs_done = {name: stat for name, stat in snapshot(out).items() if name in {r["output"] for r in done.values()}}
    assert run_batch(manifest, out, models) == 0
    assert sorted(record["row"] for record in results(out)) == [1, 2, 3, 4, 5]
    after = snapshot(out)
    assert all(after[name] == stat for name, stat in outputs_done.items())  # nothing done was redone


def test_without_ray_the_batch_runs_here_and_ray_asks_for_the_extra(tmp_path, clips, models, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives
    monkeypatch.setitem(sys.modules, "ray.data", None)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4")])
    assert run_batch(manifest, tmp_path / "here", models) == 0
    capsys.readouterr()
    assert run_batch(manifest, tmp_path / "there", models, "--ray", "local") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "relightvid: error: Running a batch on a Ray cluster (--ray) needs Ray with Ray Data, which is not "
        'importable here: `pip install "relightvid[ray]"`.'
    )


def test_neither_the_library_nor_the_pack_nor_an_in_process_batch_imports_ray(tmp_path, clips, models):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4")])
    code = f"""
import sys, json
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
import relightvid_core, relightvid_core.cli, relightvid_core.batch.run
from _support.comfy_fakes import load_pack
load_pack()
before = "ray" in sys.modules
from relightvid_core.cli import main
status = main({batch_args(manifest, tmp_path / "out", models, "--no-progress")!r})
print(json.dumps({{"before": before, "after": "ray" in sys.modules, "status": status}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"before": False, "after": False, "status": 0}
