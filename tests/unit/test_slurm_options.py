"""Runtime constraints -> sbatch options, as crunch-dispatch-slurm maps them."""

from __future__ import annotations

from archipelago.compute.dispatch.slurm import RESERVE_EXTRA_RAM, sbatch_options


def test_constraints_become_sbatch_options():
    container = {"uuid": "z1111-dz642-000000000000001",
                 "runtime_constraints": {"ram": 1 << 30, "vcpus": 3, "keep_cache_ram": 256 << 20},
                 "scheduling_parameters": {"max_run_time": 90, "partitions": ["fast", "slow"]}}
    options = sbatch_options(container)
    mem = ((1 << 30) + (256 << 20) + RESERVE_EXTRA_RAM) // (1 << 20)
    assert options == ["--job-name=z1111-dz642-000000000000001", f"--mem={mem}", "--cpus-per-task=3",
                       "--no-requeue", "--time=2", "--partition=fast,slow"]


def test_defaults_and_the_configured_partition():
    options = sbatch_options({"uuid": "z1111-dz642-000000000000002", "runtime_constraints": {}}, "debug")
    assert "--cpus-per-task=1" in options and "--partition=debug" in options
    assert not [o for o in options if o.startswith("--time")]
