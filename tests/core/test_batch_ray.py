"""``relightvid batch --ray`` on a real Ray cluster of several nodes on this machine (``ray.cluster_utils``),
with tiny models on the CPU: the same frames as in this process, bad rows alone, a node lost mid-job, an
interrupted driver, and the command without Ray installed.

Each test starts its own cluster and shuts it down, whatever happens."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from _support.batch import (
    by_row,
    clip_row,
    frames,
    partial_files,
    results,
    run_batch,
    start_batch,
    write_clips,
    write_jsonl,
    write_tiny_models,
)

ray_cluster_utils = pytest.importorskip("ray.cluster_utils", reason="Ray is part of the test extra")

WORKER_NODE_CPUS = 2


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def cluster():
    """A head node that runs no worker (like a login machine) and two worker nodes of 2 CPUs each."""
    cluster = ray_cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        nodes = [cluster.add_node(num_cpus=WORKER_NODE_CPUS) for _ in range(2)]
        cluster.wait_for_nodes()
        cluster.worker_nodes_list = nodes
        yield cluster
    finally:
        cluster.shutdown()


def _ray_options(cluster) -> list[str]:
    return ["--ray", cluster.address, "--cpus-per-worker", "1", "--workers", "2"]


def test_good_rows_give_the_frames_of_an_in_process_run_and_bad_rows_fail_alone(tmp_path, models, cluster):
    clips = write_clips(tmp_path / "clips", 3)
    rows = [
        clip_row(clips[0], "a.mp4", seed=11),
        clip_row(clips[1], "sub/b.mp4", seed=12, contact_sheet="sub/b.png"),
        {**clip_row(clips[2], "c.mp4"), "input": str(tmp_path / "missing.mp4")},
        clip_row(clips[2], "d.mp4", seed=13, text_scale=float("nan")),
        clip_row(clips[2], "../x.mp4", seed=14),
        {"input": str(clips[2].video), "mask": str(clips[2].masks), "light": "left", "output": "e.mp4", "seed": 15},
    ]
    # A row that passes the checks (its first mask reads) and fails when it runs: not retried.
    broken = write_clips(tmp_path / "broken", 1)[0]
    (broken.masks / "0003.png").write_bytes(b"not a png")
    rows.append(clip_row(broken, "f.mp4", seed=16))
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)

    here, there = tmp_path / "here", tmp_path / "there"
    assert run_batch(manifest, here, models) == 1
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert run_batch(manifest, there, models, *_ray_options(cluster)) == 1
    # Ray's current API only: 2.60 warns about `concurrency=` and remote options passed as keywords to map.
    assert [str(w.message) for w in seen if issubclass(w.category, DeprecationWarning)] == []

    for out in (here, there):
        records = by_row(out)
        assert sorted(records) == [1, 2, 3, 4, 5, 6, 7]
        assert records[7]["status"] == "failed" and "0003.png" in records[7]["error"] and records[7]["attempt"] == 1
        assert [records[row]["status"] for row in (1, 2, 6)] == ["ok"] * 3
        assert "missing.mp4 does not exist" in records[3]["error"] and "column input" in records[3]["error"]
        assert "column text_scale" in records[4]["error"] and "finite" in records[4]["error"]
        assert "column output" in records[5]["error"] and "'../x.mp4'" in records[5]["error"]
        assert not (tmp_path / "x.mp4").exists() and not partial_files(out)
    nodes = {by_row(there)[row]["worker"]["node"] for row in (1, 2, 6)}
    assert all(nodes) and by_row(here)[1]["worker"].get("node") is None
    for name in ("a.mp4", "sub/b.mp4", "e.mp4"):
        difference = np.abs(frames(here / name) - frames(there / name)).mean()
        assert difference <= 1 / 255, (name, difference)
    assert (there / "sub" / "b.png").is_file()


def _remove_node_when_busy(cluster, out: Path, removed: list, stop: threading.Event) -> None:
    """Remove the first worker node on which a job has started and not finished."""
    nodes = {node.node_id[:12]: node for node in cluster.worker_nodes_list}
    while not stop.wait(0.2):
        for log in sorted((out / "logs").glob("row-*.log")):
            text = log.read_text()
            for prefix, node in nodes.items():
                if f"'node': '{prefix}'" in text and "ok: wrote" not in text:
                    cluster.remove_node(node)
                    removed.append((prefix, log.name))
                    return


def test_a_worker_node_lost_mid_job_costs_no_job_and_leaves_no_partial_file(tmp_path, models, cluster):
    clips = write_clips(tmp_path / "clips", 1, frames=12)
    rows = [clip_row(clips[0], f"out{k}.mp4", seed=k, steps=6) for k in range(6)]
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    removed: list = []
    stop = threading.Event()
    watcher = threading.Thread(target=_remove_node_when_busy, args=(cluster, out, removed, stop), daemon=True)
    watcher.start()
    try:
        status = run_batch(manifest, out, models, *_ray_options(cluster))
    finally:
        stop.set()
        watcher.join()
    assert removed, "no job was seen running on a worker node"
    lost_node, lost_row_log = removed[0]
    records = results(out)
    assert status == 0 and len(records) == 6 and {r["status"] for r in records} == {"ok"}
    assert all((out / f"out{k}.mp4").is_file() for k in range(6)) and not partial_files(out)
    # The job that was running on the lost node ran again elsewhere: its log shows a second attempt.
    lost_row = int(lost_row_log.removeprefix("row-").removesuffix(".log"))
    record = next(r for r in records if r["row"] == lost_row)
    assert record["attempt"] >= 2 and record["worker"]["node"] != lost_node
    assert "attempt 2" in (out / "logs" / lost_row_log).read_text()


def test_an_interrupted_ray_driver_keeps_finished_jobs_and_a_rerun_does_only_the_rest(tmp_path, models, cluster):
    clips = write_clips(tmp_path / "clips", 1, frames=12)
    rows = [clip_row(clips[0], f"out{k}.mp4", seed=k, steps=6) for k in range(6)]
    manifest = write_jsonl(tmp_path / "jobs.jsonl", rows)
    out = tmp_path / "out"
    driver = start_batch(manifest, out, models, *_ray_options(cluster))
    try:
        deadline = time.monotonic() + 300
        while len(results(out)) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130 and "interrupted" in err
    finished = by_row(out)
    assert 2 <= len(finished) < 6 and not partial_files(out)
    assert run_batch(manifest, out, models, *_ray_options(cluster)) == 0
    again = results(out)
    assert sorted(r["row"] for r in again) == list(range(1, 7))  # each job recorded once: none redone
    assert all((out / f"out{k}.mp4").is_file() for k in range(6)) and not partial_files(out)


def test_workers_options_are_refused_without_ray(tmp_path, models, capsys):
    clips = write_clips(tmp_path / "clips", 1)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4")])
    assert run_batch(manifest, tmp_path / "out", models, "--workers", "2") == 2
    assert "--workers is for runs on a Ray cluster" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_job_whose_workers_keep_dying_ends_failed_after_its_retries():
    from relightvid_core.batch.on_ray import _RayWorker
    from relightvid_core.batch.plan import BatchJob

    worker = _RayWorker.__new__(_RayWorker)  # no actor: the decision alone
    worker.retries = 2
    worker.runner = None  # must not be reached
    job = BatchJob(row=4, options={"seed": 5}, output="a.mp4", contact_sheet=None, latent=None, seed_drawn=False, key="k")
    record = worker.attempt(job, 4)
    assert record["status"] == "failed" and record["row"] == 4 and record["attempt"] == 4
    assert record["error"] == (
        "the job's worker was lost 3 times (a crashed process or a lost machine); it is not run again after "
        "2 retries (--retries)."
    )


@pytest.mark.parametrize(
    ("address", "sentence"),
    [
        ("127.0.0.1:1", "--ray 127.0.0.1:1: nothing answers at 127.0.0.1:1 (Connection refused)"),
        ("bogus", "--ray bogus: expected auto, local or HOST:PORT (e.g. 10.0.0.5:6379)."),
    ],
)
def test_an_address_where_no_cluster_answers_is_one_sentence_at_once(tmp_path, models, capsys, address, sentence):
    clips = write_clips(tmp_path / "clips", 1)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4")])
    start = time.monotonic()
    assert run_batch(manifest, tmp_path / "out", models, "--ray", address) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"relightvid: error: {sentence}") and "\n" not in err
    assert time.monotonic() - start < 60 and results(tmp_path / "out") == []


def test_ray_local_starts_a_cluster_here_runs_and_stops_it(tmp_path, models):
    import ray

    clips = write_clips(tmp_path / "clips", 1)
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [clip_row(clips[0], "a.mp4", seed=1)])
    assert run_batch(manifest, tmp_path / "out", models, "--ray", "local", "--cpus-per-worker", "1") == 0
    assert by_row(tmp_path / "out")[1]["worker"]["node"] and not ray.is_initialized()
