"""The batch job (``realtime.batch``) on Ray: the same inputs, results and manifest, read
by a pool of recognizer actors on any number of machines.

The inputs this run has left to read become a Ray Data dataset of file paths (one row a
file); ``map_batches`` runs it through ``--workers`` actors, each holding one recognizer
on one CPU, which expand a video to its frames inside the map and return each file's
JSON lines. The driver (this process) writes them, as a local run does, to one shard per
actor and to the manifest, so a Ray run resumes a local one and back.

How to run it on a cluster, and what every node needs, is in ``realtime.batch``'s
docstring (``ray start --head``, then the same command with ``--ray auto``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from realtime.batch import BatchError, BatchSettings, FileResult, JobFailed, Sink, Tally, Task, image_saver, \
    load_reader, read_file, shard_name

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'realtime-digits[ray]' (or pip install 'ray[data]>=2.9')"
TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


class ReaderActor:
    """One recognizer on one CPU, reading batches of file rows into JSON lines."""

    def __init__(self, settings: BatchSettings, out: str) -> None:
        import ray

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.rec = load_reader(settings)
        self.saver = image_saver(settings, Path(out))
        self.actor = ray.get_runtime_context().get_actor_id() or str(os.getpid())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows: dict[str, list[Any]] = {"index": [], "actor": [], "lines": [], "frames": [], "digits": [], "error": []}
        for i in range(len(batch["index"])):
            task = Task(**{k: _plain(batch[k][i]) for k in TASK_FIELDS})
            result = read_file(self.rec, task, self.saver)
            rows["index"].append(int(batch["index"][i]))
            rows["actor"].append(self.actor)
            rows["lines"].append(result.lines)
            rows["frames"].append(result.frames)
            rows["digits"].append(result.digits)
            rows["error"].append(result.error or "")
        return {k: np.array(v, dtype=object if k in ("actor", "lines", "error") else np.int64)
                for k, v in rows.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def connect(settings: BatchSettings) -> Any:
    """``ray`` initialized: ``local`` starts an instance with ``--workers`` CPUs, anything
    else joins the cluster at that address (``auto``: the one ``ray start`` began)."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra that --ray needs
    except ImportError:
        raise BatchError(f"--ray needs Ray: {INSTALL_HINT}") from None
    quiet = dict(include_dashboard=False, log_to_driver=settings.verbose,
                 logging_level=logging.INFO if settings.verbose else logging.ERROR)
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    if settings.ray == "local":
        ray.init(num_cpus=settings.workers, **quiet)
    else:
        try:
            ray.init(address=settings.ray, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BatchError(f"no Ray cluster to join at {settings.ray} ({str(err).strip().splitlines()[0][:120]}); "
                             "start one with 'ray start --head', or use --ray local") from None
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the job's own bar says it
    ctx.print_on_execution_start = False
    return ray


def run_ray(settings: BatchSettings, out: Path, todo: Sequence[Task], sink: Sink, tally: Tally) -> None:
    """Read ``todo`` on Ray with a pool of ``--workers`` actors; ``sink`` gets each file."""
    import time

    t0 = time.perf_counter()
    ray = connect(settings)
    try:
        rows = [{"index": i, **dataclasses.asdict(t)} for i, t in enumerate(todo)]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // settings.ray_batch)))
        read = ds.map_batches(ReaderActor, fn_constructor_kwargs={"settings": settings, "out": str(out)},
                              batch_size=settings.ray_batch, batch_format="numpy",
                              concurrency=min(settings.workers, len(todo)), num_cpus=1)
        shards: dict[str, str] = {}  # actor -> its shard, numbered as the actors first answer
        try:
            for row in read.iter_rows():
                tally.ready(t0)
                shard = shards.setdefault(str(row["actor"]), shard_name(len(shards)))
                error = str(row["error"]) or None
                sink(shard, todo[int(row["index"])], FileResult(lines=bytes(row["lines"]), frames=int(row["frames"]),
                                                                 digits=int(row["digits"]), error=error))
        except (KeyboardInterrupt, JobFailed):
            raise
        except Exception as err:  # noqa: BLE001 - Ray wraps whatever failed on a node
            raise JobFailed(f"the Ray job failed: {_cause(err)}") from None
    finally:
        ray.shutdown()


def _cause(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(err).__name__
