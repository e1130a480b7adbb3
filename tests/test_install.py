"""The installed product: pyproject's dependencies and extras against requirements.txt, the
``digits`` command's dispatch, and (slow) a fresh ``pip install .`` that reads the demo
without PyTorch and stays within the live install's size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from realtime import cli

REPO = Path(__file__).resolve().parent.parent
# the README promises a live-only install of about 500 MB (the venv, pip included)
LIVE_INSTALL_MB = 560


def requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", s.strip(), maxsplit=1)[0].lower().replace("_", "-") for s in specs if s.strip()}


def test_requirements_txt_is_the_live_install_and_every_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted |= requirement_names(extra)
    lines = [ln for ln in (REPO / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert requirement_names(lines) == wanted
    # the live install runs the shipped graphs: no torch in it
    assert not requirement_names(project["dependencies"]) & {"torch", "torchvision", "fastapi", "ray"}


def test_the_shipped_assets_are_package_data() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["realtime._assets"] == "assets"
    patterns = setuptools["package-data"]["realtime._assets"]
    for name in ("digits.pt", "digits.int8.onnx", "pairs.onnx", "sequences.int8.onnx", "demo.mp4"):
        assert any(Path(name).match(p) for p in patterns), name
        assert (REPO / "assets" / name).is_file(), name


def test_digits_lists_its_commands_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("live", "train", "eval", "export", "serve", "batch"):
        assert re.search(rf"^  {name}\s", text, re.M), name
    assert cli.main(["lvie"]) == 2
    assert "did you mean 'live'?" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_a_missing_extra_is_named_in_one_line() -> None:
    err = ModuleNotFoundError("No module named 'torch'", name="torch")
    message = cli.missing_module_message("train", err)
    assert message is not None and "train extra" in message and "pip install" in message
    err = ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
    assert "web extra" in (cli.missing_module_message("serve", err) or "")
    # a module no install may lack is a bug, raised as it is
    assert cli.missing_module_message("live", ModuleNotFoundError("x", name="realtime_helpers")) is None


def test_digits_live_help_runs_through_the_installed_entry_point() -> None:
    run = subprocess.run([sys.executable, "-c", "import sys; from realtime.cli import live; sys.exit(live(['--help']))"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--source" in run.stdout and "demo" in run.stdout


def _dir_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 2**20


@pytest.mark.slow
def test_a_fresh_live_install_reads_the_demo_without_torch(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
                         capture_output=True, text=True, timeout=1800)
    assert pip.returncode == 0, pip.stderr[-2000:]
    size = _dir_mb(venv)
    assert size <= LIVE_INSTALL_MB, f"the live install is {size:.0f} MB"
    digits = venv / "bin" / "digits"
    out = tmp_path / "demo.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISPLAY")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    # run from elsewhere: the installed copy, not this checkout, is what answers
    run = subprocess.run([str(digits), "live", "--source", "demo", "--no-display", "--max-frames", "20",
                          "--json", str(out), "--no-progress"], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    records = out.read_text().splitlines()
    assert len(records) == 20 and '"digit"' in records[5]
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.util as u, realtime.assets as a; "
                            "print(u.find_spec('torch') is None, a.ASSETS)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    no_torch, assets = probe.stdout.split()
    assert no_torch == "True" and "site-packages" in assets
    serve = subprocess.run([str(digits), "serve"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert serve.returncode == 2 and "web extra" in serve.stderr and "Traceback" not in serve.stderr
