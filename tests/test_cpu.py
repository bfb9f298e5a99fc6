"""The default number of CPU threads: physical cores this process may use, OMP_NUM_THREADS, cgroup quotas."""

from pathlib import Path

import pytest

from fireredasr_hf import cpu


def fake_topology(root: Path, cores: dict[int, tuple[int, int]]) -> Path:
    """/sys/devices/system/cpu with logical cpu -> (package, core)."""
    for logical, (package, core) in cores.items():
        topology = root / f"cpu{logical}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    return root


def fake_cgroup(tmp_path: Path, monkeypatch, proc_lines: str, files: dict[str, str]) -> None:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "proc-cgroup").write_text(proc_lines)
    monkeypatch.setattr(cpu, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu, "PROC_CGROUP", tmp_path / "proc-cgroup")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """8 logical CPUs = 4 cores x 2 hyper-threads; the process may run on all of them; no quota."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    sys_cpu = fake_topology(tmp_path / "cpu", {cpu_id: (0, cpu_id % 4) for cpu_id in range(8)})
    monkeypatch.setattr(cpu, "SYS_CPU", sys_cpu)
    monkeypatch.setattr(cpu, "allowed_cpus", lambda: list(range(8)))
    fake_cgroup(tmp_path, monkeypatch, "0::/\n", {})
    return tmp_path


def test_hyper_threads_count_once(machine):
    assert cpu.default_num_threads() == 4


def test_the_affinity_mask_limits_the_cores(machine, monkeypatch):
    monkeypatch.setattr(cpu, "allowed_cpus", lambda: [0, 4, 1])  # core 0 twice, core 1
    assert cpu.default_num_threads() == 2


def test_omp_num_threads_is_the_users_choice(machine, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu.default_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert cpu.default_num_threads() == 4


@pytest.mark.parametrize(
    ("proc_lines", "files", "expected"),
    [
        ("0::/\n", {"cpu.max": "150000 100000\n"}, 1),  # container view, v2: 1.5 cores
        ("0::/job/step\n", {"job/cpu.max": "200000 100000\n", "job/step/cpu.max": "max 100000\n"}, 2),
        ("0::/\n", {"cpu.max": "max 100000\n"}, 4),  # no quota
        ("4:cpu,cpuacct:/docker/x\n", {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "300000\n",
                                       "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"}, 3),  # v1
        ("4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 4),
        ("0::/\n", {"cpu.max": "50000 100000\n"}, 1),  # half a core: still one thread
    ],
)  # fmt: skip
def test_cgroup_quotas(machine, monkeypatch, proc_lines, files, expected):
    fake_cgroup(machine, monkeypatch, proc_lines, files)
    assert cpu.default_num_threads() == expected


def test_unreadable_topology_counts_logical_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "SYS_CPU", tmp_path / "missing")
    assert cpu.physical_core_count([0, 1, 2]) == 3


def test_this_machine_gets_at_least_one_thread():
    assert cpu.default_num_threads() >= 1


def test_the_transcriber_uses_the_default(converted_aed_dir, monkeypatch):
    import torch

    from fireredasr_hf.transcription import Transcriber

    threads = torch.get_num_threads()
    monkeypatch.setattr(cpu, "default_num_threads", lambda: 1)
    torch.set_num_threads(2)
    try:
        Transcriber(str(converted_aed_dir))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
