"""notebooks/quickstart.ipynb: stored without outputs, and runs top to bottom (slow: a
few minutes, most of it the short training run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
CELL_TIMEOUT_S = 1200  # the training cell on a loaded 2-core machine; a hung kernel still ends


def test_the_notebook_is_stored_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 8
    for c in code:
        assert c.outputs == [] and c.execution_count is None, c.source[:80]


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(mnist_dir, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "QUICKSTART_RUN_DIR")}
    os.environ.pop("MPLBACKEND", None)  # the kernel's own inline backend, as in Jupyter
    os.environ["QUICKSTART_RUN_DIR"] = str(tmp_path / "run")  # not the repository's runs/
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # samples, augmentation, normalization, accuracy + confusion, mistakes, the Result,
    # the pages, the training curve
    assert len(images) >= 8, len(images)
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "Result(" in text and "digits:" in text
    assert "test accuracy 99." in text  # the shipped checkpoint
    assert "300 steps; test accuracy" in text
    assert (tmp_path / "run" / "model.pt").is_file()
    nbformat.write(nb, tmp_path / "executed.ipynb")  # kept for a look when it fails
