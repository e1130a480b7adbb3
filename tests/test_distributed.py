"""The digit trainer under ``torchrun`` (DistributedDataParallel, gloo on the CPU): two
ranks train the weights, batch-norm statistics and figures of one process that cuts
each batch into the same two shards (``--accumulate 2``), rank 0 alone writes and
prints, and a run resumes across process counts. Synthetic digits: no MNIST needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.checkpoint import read_checkpoint
from training.distributed import Ranks, ranks_from_env, threads_per_rank
from training.train import TrainSettings, run_training

TINY = ["--epochs", "2", "--train-subset", "256", "--test-subset", "64", "--batch-size", "64",
        "--widths", "4", "8", "8", "--threads", "1", "--no-progress"]


def _settings(data_dir: Path, out: Path, **kw) -> TrainSettings:
    base = dict(data_dir=str(data_dir), out=str(out), epochs=2, train_subset=256, test_subset=64, batch_size=64,
                widths=(4, 8, 8), threads=1, progress=False, accumulate=2)
    base.update(kw)
    return TrainSettings(**base)


def _torchrun(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    return subprocess.run([*cmd, "--standalone", "--nproc-per-node", "2", "-m", "training", "digits", *args],
                          cwd=repo_root, capture_output=True, text=True, timeout=600, env=dict(os.environ))


def _same(a: dict, b: dict, what: str) -> None:
    for k, v in a.items():
        if v.is_floating_point():
            assert torch.allclose(v, b[k], atol=1e-6, rtol=1e-5), f"{what} {k} differs by {float((v - b[k]).abs().max())}"
        else:
            assert torch.equal(v, b[k]), f"{what} {k}"


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_ranks_come_from_torchruns_environment() -> None:
    assert ranks_from_env({}) == Ranks(0, 1, 0) and not Ranks().distributed and Ranks().writer
    r = ranks_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert r == Ranks(1, 2, 1) and r.distributed and not r.writer
    with pytest.raises(ValueError):
        ranks_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_two_ranks_train_what_one_process_does_and_resume(synthetic_mnist_dir: Path, tmp_path: Path,
                                                          repo_root: Path) -> None:
    one = run_training(_settings(synthetic_mnist_dir, tmp_path / "one"), log_line=lambda s: None)

    proc = _torchrun(repo_root, *TINY, "--data-dir", str(synthetic_mnist_dir), "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rank 0 alone prints and writes
    assert [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("epoch ")] == ["1/2", "2/2"]
    assert sum(ln.startswith("done:") for ln in proc.stdout.splitlines()) == 1 and "2 ranks" in proc.stdout
    two = read_checkpoint(tmp_path / "two" / "model.pt")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    # the same shards, the same arithmetic: the same weights, statistics and figures
    _same(one["state_dict"], two["state_dict"], "EMA weights")
    _same(read_checkpoint(tmp_path / "one" / "last.pt")["training_state"]["model"],
          read_checkpoint(tmp_path / "two" / "last.pt")["training_state"]["model"], "trained weights")
    assert two["metrics"]["test_accuracy"] == pytest.approx(one["metrics"]["test_accuracy"], abs=1e-9)

    # a run stopped after its first epoch in one process goes on on two ranks (the same
    # two shards a batch) and ends where the uninterrupted run ends
    def stop(line: str) -> None:
        if line.startswith("epoch   1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(_settings(synthetic_mnist_dir, tmp_path / "resumed"), log_line=stop)
    proc = _torchrun(repo_root, "--resume", "--threads", "1", "--no-progress", "--data-dir", str(synthetic_mnist_dir),
                     "--out", str(tmp_path / "resumed"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "after epoch 1/2" in proc.stdout and "shards" not in proc.stdout
    assert [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("epoch ")] == ["2/2"]
    resumed = read_checkpoint(tmp_path / "resumed" / "model.pt")
    _same(one["state_dict"], resumed["state_dict"], "resumed EMA weights")
    assert resumed["metrics"]["test_accuracy"] == pytest.approx(one["metrics"]["test_accuracy"], abs=1e-9)


def test_ranks_on_the_cpu_share_its_cores() -> None:
    two = Ranks(rank=0, world=2, local_rank=0)
    assert threads_per_rank(2, two, "cpu", env={"LOCAL_WORLD_SIZE": "2"}, cores=2) == 1
    assert threads_per_rank(4, two, "cpu", env={"LOCAL_WORLD_SIZE": "2"}, cores=16) == 4
    # two machines of one rank each: each rank has its machine's cores
    assert threads_per_rank(2, two, "cpu", env={"LOCAL_WORLD_SIZE": "1"}, cores=2) == 2
    assert threads_per_rank(2, Ranks(), "cpu", env={}, cores=2) == 2  # one process: as asked
    assert threads_per_rank(3, two, "cuda", env={"LOCAL_WORLD_SIZE": "2"}, cores=2) == 3
    assert threads_per_rank(0, Ranks(), "cpu", env={}, cores=2) == 1
