"""bench/bench_gpu.py runs end to end on the CPU at a tiny size and prints its table (timings not asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench_gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_bench_gpu_tiny_cpu_table(bench_gpu, capsys):
    results = bench_gpu.main(
        ["--device", "cpu", "--config", "tiny", "--frames", "2", "--latent", "8", "--batch", "3", "--repeats", "2", "--dtypes", "fp32", "bf16"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    flops = bench_gpu.count_flops(bench_gpu.CONFIGS["tiny"], batch=3, frames=2, latent=8)
    assert flops > 0 and all(r.flops == flops for r in results)
    assert f"one step = {flops / 1e12:.2f} TFLOP" in lines[0]
    assert lines[1] == "| implementation | dtype | s / step | peak memory (GiB) | TFLOP/s |"
    rows = [re.fullmatch(r"\| (\w+) \| (\w+) \| ([\d.]+) \| not measured \| ([\d.]+) \|", line) for line in lines[3:]]
    assert [(m.group(1), m.group(2)) for m in rows] == [("ours", "fp32"), ("ours", "bf16")]
    for match, result in zip(rows, results):
        assert float(match.group(3)) == pytest.approx(result.seconds, abs=5e-4) and result.seconds > 0
        assert float(match.group(4)) == pytest.approx(flops / result.seconds / 1e12, abs=5e-4)


def test_bench_gpu_rejects_a_folder_that_is_not_the_official_code(bench_gpu, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_gpu.main(["--device", "cpu", "--official", str(tmp_path)])
    assert "is not a checkout of Aleafy/RelightVid" in capsys.readouterr().err
