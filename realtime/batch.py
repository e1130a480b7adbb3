"""Batch reading: folders, globs and videos of scans through the recognizer, resumable.

    python -m realtime.batch scans/ 'archive/**/*.jpg' talk.mp4 --out results/ --workers 2

Every input file is one task: an image gives one JSON line, a video one line per frame
(frames read on their own, no tracking across them, so a file's lines do not depend on
which worker read it). The lines are the live CLI's schema (``frame``, ``source``,
``ms``, ``detections``, ``numbers``; a video frame's ``t`` is its place in the video),
with ``source`` the input's path as it was found. What ``--out DIR`` holds::

    part-000.jsonl ...   the JSON lines, one shard per worker; a file's lines together
    manifest.jsonl       one line per finished input: path, size, mtime_ns, the shard
                         and byte range of its lines, frames, digits, error (or null)
    summary.json         the last run's counts and rates
    images/              annotated images with --save-images (video frames as
                         NAME/frame_NNNNNN.jpg)

Resuming: a run skips every input whose path, size and modification time match a line
of the manifest, and says how many it skipped. Only the main process writes the shards
and the manifest, a file's lines first and then its manifest line, so an interrupted run
(Ctrl-C, SIGTERM, a kill, a full disk) leaves at worst lines that no manifest line
claims; the next run cuts them off. An input that changed since it was read is read
again and its old lines are removed (the shards are rewritten beside the old ones and
swapped in through a commit marker, so a crash during that leaves the old or the new
state, never a mix). A file that cannot be read is logged, recorded in the manifest with
its error and counted; it never stops the run (``--retry-errors`` reads such files again).

Local workers (``--workers N``): N processes (spawned), each loads one recognizer and runs
it on one thread (OpenCV and the network), taking the next file from a shared queue. A
worker that dies (a decoder crash) costs its file an error and is replaced.

Many machines, on Ray (``pip install 'realtime-digits[ray]'``): the inputs become a Ray
Data dataset of file paths, read by ``map_batches`` over a pool of ``--workers`` recognizer
actors (videos are expanded to frames inside the map); the job's driver writes the results
to the same shards and manifest, so a Ray run resumes a local one and back. To run it on
a cluster:

    ray start --head                        # on the head node (prints the address)
    ray start --address HEAD:6379           # on every other node
    python -m realtime.batch /shared/scans --out /shared/results --ray auto --workers 16

Every node needs this project importable in the same Python environment (e.g.
``pip install -e '.[ray]'`` in the same place), and the inputs, the checkpoints and
``--out`` on paths every node sees (a shared file system); ``--ray local`` starts a
one-machine instance with ``--workers`` CPUs instead, and ``--ray HOST:PORT`` joins a
cluster by its address.

Exit codes: 0 done (unreadable inputs are counted, not fatal); 1 an output failed or the
Ray job failed during the run (what was written is consistent; a rerun resumes); 2 bad
arguments, inputs, output folder or checkpoint (nothing was read); 128 + N stopped by
signal N (Ctrl-C 130), the manifest consistent.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob as globmod
import json
import logging
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

from realtime.options import add_model_options, check_settings

log = logging.getLogger("realtime.batch")  # not __main__ under python -m

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
IMAGES = "images"
# a rewrite of the shards and the manifest is swapped in once this marker exists
COMMIT = "manifest.commit"
STAGED = ".new"
# a worker slot whose process keeps dying is given up after this many restarts
MAX_RESTARTS = 3
# seconds between checks that every worker is still alive while none reports
POLL_S = 0.5


class BatchError(Exception):
    """Bad inputs or an unusable output folder; the message is one line for the user."""


class JobFailed(Exception):
    """An output or the Ray job failed during the run (exit 1)."""


@dataclass(frozen=True)
class BatchSettings:
    sources: tuple[str, ...] = ()  # folders (searched recursively), files, globs
    out: str = ""  # the results folder (shards, manifest, summary, images)
    workers: int = 1  # worker processes, or Ray actors: one recognizer and one thread each
    ray: str | None = None  # None: local processes; "auto", "local" or HOST:PORT: on Ray
    ray_batch: int = 4  # files per Ray map_batches call (small: files differ in cost)
    save_images: bool = False  # annotated images under DIR/images
    retry_errors: bool = False  # read again the inputs that failed before
    weights: str | None = None  # None: $DIGITS_WEIGHTS or assets/digits.pt
    pair_weights: str | None = None  # None: the recognizer's default; "": none
    seq_weights: str | None = None  # None: the recognizer's default; "": none
    min_confidence: float | None = None  # None: the recognizer's default
    backend: str = "auto"  # inference engine
    settings: tuple[str, ...] = ()  # recognizer settings, STAGE.FIELD=VALUE
    config_file: str | None = None  # a JSON or TOML file of recognizer settings
    progress: bool = True  # progress bar on stderr
    verbose: bool = False  # log what the job does


@dataclass(frozen=True)
class Task:
    """One input file, as listed before the run."""

    source: str  # the path as found (the JSON lines' "source")
    path: str  # absolute path: the manifest's key
    size: int  # bytes, when listed
    mtime_ns: int  # modification time, when listed
    video: bool  # read frame by frame


@dataclass(frozen=True)
class FileResult:
    """What a worker made of one file: its JSON lines (all or none) and counts."""

    lines: bytes  # the file's JSON lines, each ending in a newline
    frames: int  # frames read
    digits: int  # digits found in all its frames
    error: str | None = None  # why the file could not be read (then no lines)


@dataclass(frozen=True)
class Entry:
    """One manifest line: a finished input and where its lines are."""

    path: str  # absolute path of the input
    source: str  # its "source" in the JSON lines
    size: int  # bytes when it was listed
    mtime_ns: int  # modification time when it was listed
    shard: str  # the shard file (in DIR) holding its lines
    start: int  # byte offset of its first line in the shard
    end: int  # byte offset after its last line
    frames: int  # frames read
    digits: int  # digits found
    error: str | None  # why it could not be read, or None


# --------------------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def _parser(prog: str = "python -m realtime.batch") -> argparse.ArgumentParser:
    d = BatchSettings()
    p = _Parser(
        prog=prog,
        description="Read the digits of many files: folders (searched recursively), image and video files "
        "and globs in, JSON lines (the live CLI's schema, one shard per worker) out. A rerun with the same "
        "--out skips what was read before (same path, size and modification time); unreadable files are "
        "counted and recorded, never fatal.",
        epilog="On a Ray cluster: 'ray start --head' on one machine ('ray start --address HEAD:6379' on the "
        "others), then the same command with --ray auto; inputs, checkpoints and --out must be on paths every "
        "node sees. Exit codes: 0 done, 1 an output or the Ray job failed (a rerun resumes), 2 bad arguments, "
        "inputs, output or checkpoint, 128+N stopped by signal N (the manifest stays consistent).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="a folder (its images and videos, sub-folders included, sorted by path), an image or video "
                        "file, or a glob in quotes ('scans/**/*.png'; ** recurses)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="results folder (created): part-NNN.jsonl shards, manifest.jsonl, summary.json, images/")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="worker processes (or Ray actors), each with one recognizer on one thread; about one "
                        "per CPU core")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run on Ray: 'auto' joins the cluster started with 'ray start', 'local' starts a "
                        "one-machine instance with --workers CPUs, HOST:PORT joins that cluster (needs "
                        "pip install 'ray[data]>=2.9')")
    p.add_argument("--ray-batch", type=int, default=d.ray_batch,
                   help="files per map_batches call on Ray (small, because a video costs more than an image)")
    p.add_argument("--save-images", action="store_true",
                   help="also save every annotated frame under DIR/images (by the input's path; video frames as "
                        "PATH/frame_NNNNNN.jpg)")
    p.add_argument("--retry-errors", action="store_true",
                   help="read again the inputs that could not be read before (by default they count as done)")
    add_model_options(p, backend=d.backend,
                      min_confidence="drop digits whose probability is below this, 0-1 (default: the recognizer's own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the job does")
    return p


def parse_args(argv: Sequence[str] | None = None, prog: str = "python -m realtime.batch") -> BatchSettings:
    """The settings of a job; one ``error:`` line and exit 2 on bad ones."""
    p = _parser(prog)
    a = p.parse_args(argv)
    checks = [
        (not a.sources, "no inputs: give folders, files or globs"),
        (a.workers < 1, "--workers must be >= 1"),
        (a.ray_batch < 1, "--ray-batch must be >= 1"),
        (not a.out.strip(), "--out must name a folder"),
    ]
    for bad, message in checks:
        if bad:
            p.error(message)
    check_settings(p, a)  # before any worker starts
    return BatchSettings(
        sources=tuple(a.sources), out=a.out, workers=a.workers, ray=a.ray, ray_batch=a.ray_batch,
        save_images=a.save_images, retry_errors=a.retry_errors, weights=a.weights, pair_weights=a.pair_weights,
        seq_weights=a.seq_weights, min_confidence=a.min_confidence, backend=a.backend,
        settings=tuple(a.settings), config_file=a.config, progress=not a.no_progress, verbose=a.verbose,
    )


# --------------------------------------------------------------------------- inputs


def _media_kind(path: Path) -> str | None:
    from realtime.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_EXTENSIONS else None


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        Path(os.path.abspath(path)).relative_to(folder)
        return True
    except ValueError:
        return False


def _folder_files(root: Path, skip: Path | None) -> list[Path]:
    """A folder's images and videos, sub-folders included (hidden ones and ``skip`` not)."""
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(Path(here, d), skip))
        found += [Path(here, f) for f in sorted(files) if not f.startswith(".") and _media_kind(Path(f))]
    return found


def _spec_files(spec: str, skip: Path | None) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_dir():
        return _folder_files(path, skip)
    if path.is_file():
        return [path]  # named outright: a video whatever its extension, unless it is an image
    if globmod.has_magic(spec):
        matches = sorted(Path(m) for m in globmod.glob(os.path.expanduser(spec), recursive=True))
        if not matches:
            raise BatchError(f"no files match {spec}")
        files: list[Path] = []
        for m in matches:
            files += _folder_files(m, skip) if m.is_dir() else [m] if m.is_file() and _media_kind(m) else []
        return files
    if path.exists():
        raise BatchError(f"not a file or folder: {spec}")
    raise BatchError(f"no such file or folder: {spec}")


def find_inputs(specs: Iterable[str], skip: str | os.PathLike[str] | None = None) -> list[Task]:
    """The input files of ``specs`` (folders, files, globs), each once (by absolute path),
    in the order given, a folder's sorted by path; nothing under ``skip`` (the output
    folder). Raises :class:`BatchError` for a missing path, a glob that matches nothing
    and when nothing is left to read."""
    skip_dir = Path(os.path.abspath(skip)) if skip is not None else None
    tasks: list[Task] = []
    seen: set[str] = set()
    for spec in specs:
        for f in _spec_files(spec, skip_dir):
            key = os.path.abspath(f)
            if key in seen or _inside(f, skip_dir):
                continue
            seen.add(key)
            try:
                st = f.stat()
            except OSError as err:
                raise BatchError(f"cannot read {f}: {err.strerror or err}") from None
            tasks.append(Task(source=str(f), path=key, size=int(st.st_size), mtime_ns=int(st.st_mtime_ns),
                              video=_media_kind(f) != "image"))
    if not tasks:
        raise BatchError(f"no images or videos in {' '.join(specs)}")
    return tasks


# --------------------------------------------------------------------------- the results folder


def read_manifest(path: Path) -> tuple[list[Entry], int]:
    """The manifest's entries and the length in bytes of its complete lines (a last
    line cut off by a kill is not an entry; a damaged line is skipped with a warning)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    entries: list[Entry] = []
    good = 0
    fields = {f.name for f in dataclasses.fields(Entry)}
    for n, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            break
        try:
            raw = json.loads(line)
            entries.append(Entry(**{k: raw[k] for k in fields}))
        except (ValueError, KeyError, TypeError):
            log.warning("%s line %d is damaged: skipped (its input will be read again)", path, n)
        good += len(line)
    return entries, good


@dataclass(frozen=True)
class Plan:
    """What a run does with what an earlier one left."""

    keep: list[Entry]  # entries still valid, in manifest order
    done: dict[str, Entry]  # by path: the inputs this run skips
    dropped: int  # entries no longer valid (changed inputs, superseded, lines missing)


def plan_resume(entries: Sequence[Entry], tasks: Sequence[Task], shard_sizes: dict[str, int],
                retry_errors: bool = False) -> Plan:
    """Which earlier entries stand: the last one per path, whose lines are all in its
    shard and, for an input of this run, whose size and mtime still match (and, with
    ``retry_errors``, that did not fail)."""
    current = {t.path: t for t in tasks}
    last = {e.path: i for i, e in enumerate(entries)}
    keep: list[Entry] = []
    for i, e in enumerate(entries):
        t = current.get(e.path)
        stale = t is not None and (t.size != e.size or t.mtime_ns != e.mtime_ns or (retry_errors and e.error))
        if last[e.path] == i and not stale and e.end <= shard_sizes.get(e.shard, -1) and 0 <= e.start <= e.end:
            keep.append(e)
    done = {e.path: e for e in keep if e.path in current}
    return Plan(keep=keep, done=done, dropped=len(entries) - len(keep))


def _contiguous(entries: Sequence[Entry]) -> bool:
    pos = 0
    for e in entries:
        if e.start != pos:
            return False
        pos = e.end
    return True


def _write_synced(path: Path, chunks: Iterable[bytes]) -> None:
    with open(path, "wb") as fh:
        for c in chunks:
            fh.write(c)
        fh.flush()
        os.fsync(fh.fileno())


def _entry_line(e: Entry) -> bytes:
    return (json.dumps(dataclasses.asdict(e), separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def finish_commit(out: Path) -> None:
    """Swap in a staged rewrite whose commit marker exists (again after a crash: each
    replace is idempotent), then drop the marker and any staged file left without one."""
    marker = out / COMMIT
    if marker.exists():
        for name in json.loads(marker.read_text()):
            staged = out / (name + STAGED)
            if staged.exists():
                os.replace(staged, out / name)
        marker.unlink()
    for stray in out.glob("*" + STAGED):
        stray.unlink()


def _rewrite(out: Path, keep: list[Entry], shards: set[str]) -> list[Entry]:
    """Rewrite ``shards`` holding only the lines of ``keep``, and the manifest, staged
    beside the old files and swapped in behind a commit marker."""
    moved: dict[int, Entry] = {}
    for shard in sorted(shards):
        pos = 0
        with open(out / shard, "rb") as src, open(out / (shard + STAGED), "wb") as dst:
            for i, e in enumerate(keep):
                if e.shard != shard:
                    continue
                src.seek(e.start)
                dst.write(src.read(e.end - e.start))
                moved[i] = dataclasses.replace(e, start=pos, end=pos + e.end - e.start)
                pos += e.end - e.start
            dst.flush()
            os.fsync(dst.fileno())
    kept = [moved.get(i, e) for i, e in enumerate(keep)]
    _write_synced(out / (MANIFEST + STAGED), (_entry_line(e) for e in kept))
    tmp = out / (COMMIT + ".tmp")
    _write_synced(tmp, [json.dumps(sorted(shards) + [MANIFEST]).encode()])
    os.replace(tmp, out / COMMIT)  # the commit point
    finish_commit(out)
    return kept


def prepare_out(out: Path, tasks: Sequence[Task], retry_errors: bool = False) -> Plan:
    """Make the results folder consistent with its manifest and say what is done: lines
    no entry claims are cut off, and the lines of inputs to read again removed."""
    finish_commit(out)
    manifest = out / MANIFEST
    entries, good = read_manifest(manifest)
    if manifest.exists() and manifest.stat().st_size != good:
        os.truncate(manifest, good)  # a last line cut off by a kill: the next append starts clean
    sizes = {p.name: p.stat().st_size for p in out.glob("part-*.jsonl")}
    plan = plan_resume(entries, tasks, sizes, retry_errors)
    by_shard: dict[str, list[Entry]] = {s: [] for s in sizes}
    for e in plan.keep:
        by_shard[e.shard].append(e)
    messy = {s for s, es in by_shard.items() if not _contiguous(es)}
    for s, es in by_shard.items():
        if s not in messy and sizes[s] > (es[-1].end if es else 0):
            os.truncate(out / s, es[-1].end if es else 0)
    if plan.dropped or messy:
        keep = _rewrite(out, plan.keep, messy)
        plan = dataclasses.replace(plan, keep=keep, done={e.path: e for e in keep if e.path in plan.done})
    return plan


class Store:
    """The results folder while a run writes it: a file's lines to its worker's shard,
    flushed, then its manifest line (one write), so a line in the manifest always
    points at complete lines."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._shards: dict[str, tuple[IO[bytes], list[int]]] = {}
        self._manifest: IO[bytes] | None = open(out / MANIFEST, "ab", buffering=0)

    def record(self, shard: str, task: Task, result: FileResult) -> Entry:
        if shard not in self._shards:
            fh = open(self.out / shard, "ab")
            self._shards[shard] = (fh, [fh.tell()])
        fh, pos = self._shards[shard]
        start = pos[0]
        if result.lines:
            fh.write(result.lines)
            fh.flush()
            pos[0] += len(result.lines)
        entry = Entry(path=task.path, source=task.source, size=task.size, mtime_ns=task.mtime_ns, shard=shard,
                      start=start, end=pos[0], frames=result.frames, digits=result.digits, error=result.error)
        assert self._manifest is not None
        self._manifest.write(_entry_line(entry))
        return entry

    def close(self) -> None:
        shards, self._shards = self._shards, {}
        for fh, _ in shards.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        if self._manifest is not None:
            os.fsync(self._manifest.fileno())
            self._manifest.close()
            self._manifest = None


def shard_name(index: int) -> str:
    return f"part-{index:03d}.jsonl"


def open_out(settings: BatchSettings) -> Path:
    """The results folder, created, and checked writable (one-line BatchError)."""
    from realtime.sinks import SinkError, make_dir

    try:
        out = make_dir(settings.out)
    except SinkError as err:
        raise BatchError(str(err)) from None
    probe = out / ".write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise BatchError(f"cannot write in {out}: {err.strerror or err}") from None
    return out


# --------------------------------------------------------------------------- reading one file


def load_reader(settings: BatchSettings) -> Any:
    """One recognizer on one thread (OpenCV's too): a worker's share of the CPUs."""
    import cv2

    cv2.setNumThreads(1)
    from realtime.recognizer import Recognizer, configure

    kwargs: dict[str, Any] = dict(backend=settings.backend, threads=1, pair_weights=settings.pair_weights,
                                  seq_weights=settings.seq_weights,
                                  config=configure(settings=settings.settings, file=settings.config_file))
    if settings.min_confidence is not None:
        kwargs["min_confidence"] = settings.min_confidence
    return Recognizer.load(settings.weights, **kwargs)


def image_name(source: str) -> str:
    """Where an input's annotated image goes under DIR/images: its path relative to the
    working folder, or its absolute path without the root (so two inputs never meet)."""
    path = Path(os.path.abspath(source))
    try:
        rel = path.relative_to(Path.cwd())
    except ValueError:
        rel = path.relative_to(path.anchor)
    return rel.as_posix()


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip(": ")


def _frames(task: Task) -> Iterator[tuple[Any, int, float | None]]:
    """``(BGR image, index, t)`` of a file: an image once, a video frame by frame."""
    from realtime.results import decode_image
    from realtime.sources import VideoSource, captured_stderr

    if not task.video:
        with captured_stderr():  # libpng's own words on a damaged file: the error says it
            image = decode_image(Path(task.path).read_bytes(), task.source)
        yield image, 0, None
        return
    with VideoSource(task.path) as video:
        fps = video.fps
        for frame in video:
            yield frame.image, frame.index, frame.index / fps


def read_file(rec: Any, task: Task, saver: Any = None) -> FileResult:
    """One file's JSON lines and counts, or its error (never raises for a bad file)."""
    from realtime.results import recognize

    lines: list[bytes] = []
    digits = 0
    try:
        for image, index, t in _frames(task):
            result = recognize(rec, image, source=task.source, frame=index)
            record = result.to_dict()
            if t is not None:
                record["t"] = round(float(t), 4)
            lines.append(_json_line(record))
            digits += len(result.detections)
            if saver is not None:
                name = image_name(task.source)
                saver.save(f"{name}/frame_{index:06d}.jpg" if task.video else name, result.plot())
    except Exception as err:  # noqa: BLE001 - a bad file is counted, whatever broke on it
        log.debug("cannot read %s: %s", task.source, _one_line(err))  # the main process says it
        return FileResult(lines=b"", frames=0, digits=0, error=_one_line(err))
    return FileResult(lines=b"".join(lines), frames=len(lines), digits=digits)


def image_saver(settings: BatchSettings, out: Path) -> Any:
    from realtime.sinks import ImageSaver

    return ImageSaver(out / IMAGES) if settings.save_images else None


# --------------------------------------------------------------------------- local workers


def worker_main(wid: int, settings: BatchSettings, out: str, tasks: Any, results: Any) -> None:
    """A worker process: load one recognizer, then read files from ``tasks`` until None.
    Ctrl-C is the main process's to handle: it stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    try:
        rec = load_reader(settings)
        saver = image_saver(settings, Path(out))
    except Exception as err:  # noqa: BLE001 - reported by the main process in one line
        results.put(("fatal", wid, str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)))
        return
    results.put(("ready", wid, time.perf_counter() - t0))
    while True:
        item = tasks.get()
        if item is None:
            return
        index, task = item
        results.put(("start", wid, index))
        results.put(("done", wid, index, read_file(rec, task, saver)))


@dataclass
class Tally:
    """The counts of a run so far (what the summary and the progress bar say)."""

    files: int = 0
    frames: int = 0
    digits: int = 0
    errors: int = 0
    load_s: float | None = None  # until the first worker was ready
    started: float | None = None  # perf_counter when the first worker was ready
    on_ready: Callable[[], None] | None = None  # called once, when the first worker is ready

    def add(self, entry: Entry) -> None:
        self.files += 1
        self.frames += entry.frames
        self.digits += entry.digits
        self.errors += entry.error is not None

    def ready(self, t0: float) -> None:
        if self.started is None:
            self.started = time.perf_counter()
            self.load_s = self.started - t0
            if self.on_ready is not None:
                self.on_ready()


# what a run calls for each finished file: (shard, task, result)
Sink = Callable[[str, Task, FileResult], None]


class LocalPool:
    """``n`` spawned worker processes sharing one task queue; dead ones replaced."""

    def __init__(self, settings: BatchSettings, out: Path, todo: Sequence[Task], n: int) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")  # never fork a process that holds threads
        self.settings, self.out = settings, str(out)
        self.tasks, self.results = self.ctx.Queue(), self.ctx.Queue()
        for item in enumerate(todo):
            self.tasks.put(item)
        for _ in range(n):
            self.tasks.put(None)
        self.procs: dict[int, Any] = {}
        self.current: dict[int, int] = {}  # worker -> index of the file it reads
        self.ready: set[int] = set()
        self.restarts = {wid: 0 for wid in range(n)}
        for wid in range(n):
            self._start(wid)

    def _start(self, wid: int) -> None:
        p = self.ctx.Process(target=worker_main, args=(wid, self.settings, self.out, self.tasks, self.results),
                             name=f"batch-worker-{wid}", daemon=True)
        # started with SIGINT ignored, which exec keeps: the terminal's Ctrl-C reaches the
        # whole process group, and stopping the workers is the main process's job
        import threading

        if threading.current_thread() is not threading.main_thread():
            p.start()  # signal dispositions belong to the main thread
        else:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                p.start()
            finally:
                signal.signal(signal.SIGINT, previous)
        self.procs[wid] = p

    def messages(self) -> Iterator[tuple[Any, ...]]:
        """What the workers say; a dead worker's file comes back as an error ("done")."""
        while True:
            try:
                yield self.results.get(timeout=POLL_S)
            except queue.Empty:
                yield from self._dead()

    def _dead(self) -> Iterator[tuple[Any, ...]]:
        for wid, p in list(self.procs.items()):
            if p.exitcode is None or p.exitcode == 0:
                continue
            del self.procs[wid]
            if wid not in self.ready:
                yield ("fatal", wid, f"worker {wid} died while loading the models (exit code {p.exitcode})")
                continue
            index = self.current.pop(wid, None)
            if index is not None:
                why = f"worker died while reading it (exit code {p.exitcode})"
                yield ("done", wid, index, FileResult(lines=b"", frames=0, digits=0, error=why))
            self.restarts[wid] += 1
            if self.restarts[wid] > MAX_RESTARTS:
                yield ("fatal", wid, f"worker {wid} died {self.restarts[wid]} times; giving up")
                continue
            self.ready.discard(wid)
            self._start(wid)

    def close(self) -> None:
        for p in self.procs.values():
            if p.is_alive():
                p.terminate()
        for p in self.procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (self.tasks, self.results):
            q.cancel_join_thread()  # items no worker will take: nothing to wait for
            q.close()


def run_local(settings: BatchSettings, out: Path, todo: Sequence[Task], sink: Sink, tally: Tally) -> None:
    """Read ``todo`` with ``--workers`` processes; ``sink`` gets each finished file."""
    pending = set(range(len(todo)))
    pool = LocalPool(settings, out, todo, min(settings.workers, len(todo)))
    t0 = time.perf_counter()
    try:
        for msg in pool.messages():
            kind, wid = msg[0], msg[1]
            if kind == "fatal":
                raise BatchError(msg[2])
            if kind == "ready":
                pool.ready.add(wid)
                tally.ready(t0)
                log.info("worker %d loaded its models in %.1f s", wid, msg[2])
            elif kind == "start":
                pool.current[wid] = msg[2]
            elif kind == "done" and msg[2] in pending:
                pool.current.pop(wid, None)
                pending.discard(msg[2])
                sink(shard_name(wid), todo[msg[2]], msg[3])
                if not pending:
                    return
    finally:
        pool.close()


def run_here(rec: Any, settings: BatchSettings, out: Path, todo: Sequence[Task], sink: Sink, tally: Tally) -> None:
    """Read ``todo`` in this process with ``rec`` (programs and tests that bring their own)."""
    tally.ready(time.perf_counter())
    saver = image_saver(settings, out)
    for task in todo:
        sink(shard_name(0), task, read_file(rec, task, saver))


# --------------------------------------------------------------------------- the job


def _bar(settings: BatchSettings, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="reading", dynamic_ncols=True, file=sys.stderr,
                disable=not settings.progress, smoothing=0.1)


def summary(tally: Tally, skipped: int, out: Path, elapsed: float, stopped: bool = False) -> dict[str, Any]:
    """The run's counts and rate (files/s from the first worker ready to the end)."""
    busy = time.perf_counter() - tally.started if tally.started is not None else 0.0
    return {
        "files": tally.files, "frames": tally.frames, "digits": tally.digits, "errors": tally.errors,
        "skipped": skipped, "seconds": round(elapsed, 3), "load_seconds": round(tally.load_s or 0.0, 3),
        "read_seconds": round(busy, 3), "files_per_s": round(tally.files / busy, 3) if busy > 0 else None,
        "stopped": stopped, "out": str(out),
    }


def summary_line(s: dict[str, Any]) -> str:
    rate = f"{s['files_per_s']:.2f} files/s" if s["files_per_s"] else "no rate"
    head = "stopped (a rerun resumes): " if s["stopped"] else ""
    errors = f", {s['errors']} unreadable (see the manifest's errors)" if s["errors"] else ", 0 errors"
    return (f"{head}{s['files']} file{'s' * (s['files'] != 1)} read ({s['frames']} frames, {s['digits']} digits{errors}) in "
            f"{s['read_seconds']:.1f} s after {s['load_seconds']:.1f} s loading: {rate}; "
            f"{s['skipped']} skipped (read before); results -> {s['out']}/part-*.jsonl")


def _write_summary(out: Path, s: dict[str, Any]) -> None:
    tmp = out / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(s, indent=1) + "\n")
    os.replace(tmp, out / SUMMARY)


def run_batch(settings: BatchSettings, guard: Any = None, *, recognizer: Any = None) -> dict[str, Any]:
    """List the inputs, resume the results folder, read what is left, say what was done.
    ``recognizer``: read in this process with it (no workers). Returns the summary;
    raises :class:`BatchError` (nothing read), :class:`JobFailed`, KeyboardInterrupt."""
    t0 = time.perf_counter()
    out = open_out(settings)
    tasks = find_inputs(settings.sources, skip=out)
    plan = prepare_out(out, tasks, settings.retry_errors)
    todo = [t for t in tasks if t.path not in plan.done]
    skipped = len(tasks) - len(todo)
    if skipped:
        failed = sum(e.error is not None for e in plan.done.values())
        more = f", {failed} of them unreadable (--retry-errors reads them again)" if failed else ""
        print(f"{skipped} of {len(tasks)} inputs read before: skipped{more}", file=sys.stderr)
    if not todo:
        print(f"nothing to read: all {len(tasks)} inputs are in {out / MANIFEST}", file=sys.stderr)
        return summary(Tally(), skipped, out, time.perf_counter() - t0)
    if recognizer is None:
        n = min(settings.workers, len(todo))
        where = f"Ray actor{'s' * (n > 1)} ({settings.ray})" if settings.ray else f"worker process{'es' * (n > 1)}"
        print(f"loading the models in {n} {where} ...", file=sys.stderr)
    bar = _bar(settings, len(todo))
    # the bar's clock (its rate and ETA) starts when the first worker can read
    tally = Tally(on_ready=lambda: bar.reset(total=len(todo)))
    store = Store(out)
    stopped = finished = False
    try:
        _read_all(settings, out, todo, _sink(store, bar, tally, guard), tally, recognizer)
        finished = True
    except KeyboardInterrupt:
        stopped = True
        raise
    finally:
        bar.close()
        store.close()
        s = summary(tally, skipped, out, time.perf_counter() - t0, stopped)
        _write_summary(out, s)
        if finished or stopped or tally.files:  # not for a job refused before any file (its error says why)
            print(summary_line(s), file=sys.stderr)
    return s


def _sink(store: Store, bar: Any, tally: Tally, guard: Any) -> Sink:
    import contextlib

    def finished(shard: str, task: Task, result: FileResult) -> None:
        # a file's lines and its manifest line: both or neither, whatever signal lands
        with guard.deferred() if guard is not None else contextlib.nullcontext():
            try:
                entry = store.record(shard, task, result)
            except OSError as err:
                raise JobFailed(f"cannot write the results in {store.out}: {err.strerror or err}") from None
        tally.add(entry)
        if result.error:
            log.warning("cannot read %s: %s", task.source, result.error)
        bar.set_postfix(frames=tally.frames, digits=tally.digits, errors=tally.errors, refresh=False)
        bar.update(1)

    return finished


def _read_all(settings: BatchSettings, out: Path, todo: Sequence[Task], sink: Sink, tally: Tally,
              recognizer: Any) -> None:
    if not todo:
        return
    if recognizer is not None:
        run_here(recognizer, settings, out, todo, sink, tally)
    elif settings.ray:
        from realtime.batch_ray import run_ray

        run_ray(settings, out, todo, sink, tally)
    else:
        run_local(settings, out, todo, sink, tally)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None, prog: str = "python -m realtime.batch") -> int:
    settings = parse_args(argv, prog)  # exits 2 on bad arguments
    logging.basicConfig(level=logging.INFO if settings.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not settings.verbose:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # the manifest says why a video failed
    from tqdm.contrib.logging import logging_redirect_tqdm

    from realtime.sinks import graceful_shutdown, interruption

    try:
        with graceful_shutdown() as guard, logging_redirect_tqdm():
            run_batch(settings, guard)
        return 0
    except (KeyboardInterrupt, SystemError) as err:
        stop = interruption(err)
        if stop is None:
            raise
        return getattr(stop, "exit_code", 130)
    except JobFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - narrowed to the user's errors just below
        if not isinstance(err, _user_errors()):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from training.errors import CheckpointError

    return (BatchError, CheckpointError)


if __name__ == "__main__":
    raise SystemExit(main())
