"""The benchmark scripts run (tiny sizes) and write their JSON; ``benchmarks/gpu.sh`` parses and dry-runs on CPU."""

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmarks import audit, breakdown, envs, regretnet, studies, throughput, update
from jaxauction.train.regretnet import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_throughput_and_update_write_json(tmp_path):
    out = tmp_path / "throughput.json"
    result = throughput.main(["--markets", "1,8", "--auctions", "100", "--auction-budget", "0", "--repeats", "1",
                              "--forward", "64", "--dtypes", "bfloat16", "--out", str(out)])  # fmt: skip
    saved = json.loads(out.read_text())
    assert saved["auctions_per_second"] == result["auctions_per_second"] > 0
    assert [(r["dtype"], r["markets"]) for r in saved["sweep"]] == [("bfloat16", 1), ("bfloat16", 8)]
    assert 0 < saved["roofline_fraction"] and len(saved["forward"]) == 1
    result = update.main(["--sizes", "96", "--steps", "1", "--repeats", "1", "--chunk", "32"])
    assert [r["dataset_size"] for r in result["sweep"]] == [96] and result["samples_per_second"] > 0


def test_regretnet_benchmark_counts_flops():
    result = regretnet.main(["--settings", "additive_2x2", "--batches", "8", "--iterations", "2", "--repeats", "1"])
    row = result["rows"][0]
    # 2x2: forward = 2 x (4*100 + 100*100 + 100*6) + 2 x (4*100 + 100*100 + 100*2) multiply-adds; 53 passes x 3
    assert row["flops_per_iteration"] == 3 * 8 * 53 * (2 * (400 + 10_000 + 600) + 2 * (400 + 10_000 + 200))
    assert row["ms_per_iteration"] > 0 and 0 < row["roofline_fraction"] < 1


def test_zoo_benchmark_times_every_architecture():
    """The default pairs cover every architecture of the trainer registry; one pair timed (each costs a compile)."""
    assert {pair.split(":")[0] for pair in regretnet.ZOO} == set(ARCHITECTURES)
    result = regretnet.main(["--zoo", "--pairs", "myersonnet:single3", "--iterations", "2", "--repeats", "1",
                             "--audit-profiles", "16"])  # fmt: skip
    assert [(r["model"], r["setting"], r["batch"]) for r in result["rows"]] == [("myersonnet", "single3", 1024)]
    assert result["rows"][0]["ms_per_iteration"] > 0 and result["rows"][0]["audit_ms_per_profile"] > 0


@pytest.mark.slow
def test_audit_benchmark_counts_flops_by_the_cost_model(tmp_path):
    out = tmp_path / "audit.json"
    result = audit.main(["--settings", "single2", "--audits", "quick", "--profiles", "8", "--repeats", "1",
                         "--out", str(out)])  # fmt: skip
    row = result["rows"][0]
    # single2: 2 bidders x (3 x 5 starts x 100 steps + 1,001 grid points + 2 breakpoints) + 1 truthful call
    assert row["evaluations_per_profile"] == 2 * (3 * 5 * 100 + 1003) + 1
    forward = 2 * (2 * 100 + 100 * 100 + 100 * 3) + 2 * (2 * 100 + 100 * 100 + 100 * 2)  # both networks
    assert row["flops_per_profile"] == row["evaluations_per_profile"] * forward
    assert row["profiles_per_second"] > 0 and 0 < row["roofline_fraction"] < 1 and out.exists()


def test_studies_benchmark_writes_rows(tmp_path):
    out = tmp_path / "studies.json"
    studies.main(["--learners", "truthful", "--reserves", "3", "--seeds", "2", "--auctions", "100", "--repeats", "1",
                  "--out", str(out)])  # fmt: skip
    row = json.loads(out.read_text())["rows"][0]
    assert row["reserves"] * row["seeds"] == 6 and row["pairs_per_second"] > 0


@pytest.mark.slow
def test_breakdown_runs():
    result = breakdown.main(["--markets", "4", "--auctions", "100", "--repeats", "1"])
    assert all(result[k] > 0 for k in ("seed", "frozen_bidders", "second_price", "precision_highest"))


def test_envs_benchmark_runs():
    result = envs.main(["--markets", "2", "--auctions", "50", "--repeats", "1"])
    row = result["rows"][0]
    assert row["markets"] == 2 and row["env_auctions_per_s"] > 0 and row["overhead"] > 0


def test_auctions_per_call_budget():
    assert throughput.auctions_per_call(1, None, 2_000) == 20_000
    assert throughput.auctions_per_call(4096, 200_000_000, 2_000) == 20_000
    assert throughput.auctions_per_call(2_097_152, 200_000_000, 2_000) == 100


@pytest.mark.parametrize("script", ["gpu.sh", "gpu_regretnet.sh", "gpu_dynamic.sh", "gpu_zoo.sh"])
def test_gpu_script_parses(script):
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["gpu.sh", "gpu_regretnet.sh", "gpu_dynamic.sh", "gpu_zoo.sh"])
def test_gpu_script_dry_run_on_cpu(script, tmp_path):
    out = tmp_path / "out"  # beside RUNS, as on the GPU machine (packing empties OUT)
    env = {**os.environ, "DRY_RUN": "1", "OUT": str(out), "RUNS": str(tmp_path / "runs")}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(["bash", f"benchmarks/{script}"], cwd=ROOT, env=env, timeout=900, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with tarfile.open(out / "gpu_results.tar.gz") as archive:
        names = {Path(n).name for n in archive.getnames()}
    assert "summary.log" in names and "device.json" in names
    if script == "gpu_regretnet.sh":
        assert {"3x10_metrics.json", "5x10_metrics.json", "params_3x10.npz", "regretnet_unrolled.json"} <= names
    if script == "gpu_zoo.sh":  # both cells trained through their 200 iterations, audited and tabled
        assert {"zoo_bench.json", "zoo_table.md", "rochetnet_additive_1x2_metrics.json",
                "params_rochetnet_additive_1x2.npz"} <= names
        parts = sorted(out.glob("zoo_runs.tar.gz.part*"))  # RUNS itself, for a later lease to resume from
        assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
        with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as archive:
            archive.extractall(tmp_path / "back", filter="data")
        for cell in ("rochetnet_additive_1x2", "myersonnet_single3"):
            assert (tmp_path / "back" / cell / "checkpoint.npz").read_bytes() == \
                (tmp_path / "runs" / cell / "checkpoint.npz").read_bytes()
    if script == "gpu_dynamic.sh":  # the table, the sweep, the designs and the one-buyer cells, all finished
        assert {"metrics.json", "design.json", "horizon1000-hedge.json", "single-hedge-natural_format_lp.json"} <= names


@pytest.mark.slow
def test_gpu_zoo_fits_one_mixture_cell_and_audits_it_on_a_size_it_never_saw(tmp_path):
    """FIT=1 plans its one cell from the bench's timing of that cell (with the ATTACK it trains with); a
    model:setting+other cell trains on both sizes; ON_SETTING audits it on a third, and the table names the
    mixture in both rows."""
    out = tmp_path / "out"
    env = {**os.environ, "DRY_RUN": "1", "FIT": "1", "OUT": str(out), "RUNS": str(tmp_path / "runs"),
           "BUDGET": "220", "CELLS": "equivariantnet:additive_1x2+additive_2x2", "ON_SETTING": "additive_2x3",
           "ON_SECONDS": "60", "ATTACK": "--misreport-candidates 4 --misreport-keep-best"}  # fmt: skip
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(["bash", "benchmarks/gpu_zoo.sh"], cwd=ROOT, env=env, timeout=900, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with tarfile.open(out / "gpu_results.tar.gz") as archive:
        read = {Path(m.name).name: archive.extractfile(m) for m in archive.getmembers() if m.isfile()}
        bench = json.loads(read["zoo_bench.json"].read())
        summary = read["summary.log"].read().decode()
        table = read["zoo_table.md"].read().decode()
    assert [(r["setting"], r["audit_ms_per_profile"], r["misreport_candidates"], r["misreport_keep_best"])
            for r in bench["rows"]] == [("additive_1x2+additive_2x2", None, 4, True)]
    planned = int(summary.split("planned for ")[1].split()[0])
    cell = tmp_path / "runs" / "equivariantnet_additive_1x2_and_additive_2x2"
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["iterations_planned"] == planned and metrics["config"]["train"]["mixture"] == ["additive_2x2"]
    assert metrics["config"]["train"]["misreport_candidates"] == 4 and metrics["config"]["train"]["misreport_keep_best"]
    audit = json.loads((tmp_path / "runs" / f"{cell.name}_on_additive_2x3" / "metrics.json").read_text())
    assert audit["setting"] == "additive_2x3" and audit["trained_on"] == ["additive_1x2", "additive_2x2"]
    assert "equivariantnet (trained on additive_1x2 + additive_2x2)" in table
    assert "equivariantnet (audited apart, trained on additive_1x2 + additive_2x2)" in table


def test_pytorch_reference_refuses_a_folder_that_is_not_the_reference_checkout(tmp_path, capsys):
    """The comparison runs the public repository's own trainer: without its checkout it stops before anything."""
    from benchmarks import pytorch_reference

    with pytest.raises(SystemExit, match="not a checkout of dimonenka/optimaler"):
        pytorch_reference.main(["--repo", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown model 'regretnet'"):
        pytorch_reference.main(["--repo", str(tmp_path), "--models", "regretnet"])
