"""The driver of a cluster run: documents in, each document's result handed back exactly once.

The driver reads and hashes each document and puts its bytes in the object store; a task opens
it there (its page count, what a report says of the file), then one page task per range of pages
prepares it (CPU tasks, as many at once as the cluster has CPUs). Rows of finished ranges, from any
documents, are fed to the inference actors in batches; when every range of a document is
classified the driver builds its result and hands it to ``emit``, which alone writes the results
file. A bounded window of documents is in flight.

Faults: Ray re-runs a page task whose worker or node died (its ``max_retries``, ``PREP_RETRIES``).
An inference actor that dies is replaced by a fresh one (up to ``ACTOR_RESTARTS`` times per actor;
the driver does it rather than Ray's ``max_restarts``, which prints a warning on every run when
an actor's arguments, here the model, live in the object store), and the batches it held go to
the others with the same rows; rows lost with a node are prepared again. Each range is tried at
most ``RANGE_RETRIES`` + 1 times; past that it is reported as error pages, so its document is
still reported, once.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from ..classifier import ModelError, ModelInfo
from ..document import DocumentError, file_problem
from ..pipeline import AnalysisOptions, abstain_threshold
from . import ClusterError, plan, session
from .plan import DocumentJob, PageRange
from .workers import InferenceActor, open_document, prepare_pages

PREP_RETRIES = 2
ACTOR_RESTARTS = 2
RANGE_RETRIES = 2
# On CPUs inference is a quarter to a half of the work (bench/bench_speed.py, bench/bench_cluster.py);
# an actor's session may use more threads (--threads) when it falls behind.
CPUS_PER_CPU_ACTOR = 4
CALLS_PER_ACTOR = 2  # batches queued at each actor, so that it never waits for the driver
DOCS_PER_CPU = 2  # documents in flight per cluster CPU ...
# ... and at most this much of their files in the object store of the driver's node (its own copies):
# enough to keep every CPU busy with scans of a few MB, little enough for a laptop driver.
BYTES_IN_FLIGHT, BYTES_IN_FLIGHT_PER_CPU = 512 << 20, 4 << 20


def run(files: Sequence[Path], *, model: Path | None, device: str, batch_size: int, threads: int | None,
        options: AnalysisOptions, address: str | None, cpus: int | None,
        emit: Callable[[dict[str, Any]], None], say: Callable[[str], None],
        pages_per_task: int | None = None) -> None:
    """See ``bytehoven_desktop.cluster.run_on_ray``."""
    from ..classifier import default_model_path

    model_path = Path(model) if model else default_model_path(device)
    try:
        model_bytes = model_path.read_bytes()
    except OSError as exc:
        raise ClusterError(f"{model_path}: model cannot be read ({exc.strerror or exc})") from None
    sess = session.connect(address, cpus)
    unroute = session.route_messages(say)
    try:
        _Run(files, model_bytes, device, batch_size, threads, options, emit, say,
             pages_per_task or plan.PAGES_PER_TASK).go()
    finally:
        unroute()
        session.close(sess)


class _Run:
    def __init__(self, files: Sequence[Path], model_bytes: bytes, device: str, batch_size: int,
                 threads: int | None, options: AnalysisOptions, emit: Callable[[dict[str, Any]], None],
                 say: Callable[[str], None], pages_per_task: int):
        self.files = deque(files)
        self.options, self.emit, self.say = options, emit, say
        self.pages_per_task = pages_per_task
        self.batch_size = batch_size
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        gpus = int(resources.get("GPU", 0))
        use_gpu = device in ("auto", "cuda") and gpus > 0
        if device == "cuda" and not use_gpu:
            say("CUDA was requested but the Ray cluster has no GPUs; inference runs on CPUs")
        # One actor per GPU; on CPUs, one per CPUS_PER_CPU_ACTOR CPUs. A CPU actor asks for no CPU
        # while it runs (Ray's default for actors), so page tasks keep every CPU busy.
        self.n_actors = gpus if use_gpu else max(1, self.cpus // CPUS_PER_CPU_ACTOR)
        actor_options: dict[str, Any] = {}
        if use_gpu:
            actor_options.update(num_gpus=1, num_cpus=1)
        sha = hashlib.sha256(model_bytes).hexdigest()
        self.model_ref = ray.put(model_bytes)  # held until the end: replacement actors fetch it too
        args = ([self.model_ref], sha, "cuda" if use_gpu else "cpu", threads or 1, batch_size)
        self._new_actor = lambda: InferenceActor.options(**actor_options).remote(*args)
        self.actors = [self._new_actor() for _ in range(self.n_actors)]
        self.replacements = ACTOR_RESTARTS * self.n_actors  # actors that may still replace dead ones
        try:
            described = ray.get([a.describe.remote() for a in self.actors])
        except RayError as exc:
            raise ClusterError(f"the inference workers could not load the model ({_why(exc)})") from None
        self.info: ModelInfo = described[0]["info"]
        self.device: str = described[0]["device"]
        for notice in dict.fromkeys(d["notice"] for d in described):
            if notice:
                say(f"inference workers: {notice}")
        self.threshold = abstain_threshold(options, self.info)
        self.height, self.width = self.info.input_height, self.info.input_width
        self.load = {a: 0 for a in self.actors}  # batches in flight per actor
        self.docs: list[DocumentJob] = []
        self.bytes_in_flight = 0
        self.max_bytes = max(BYTES_IN_FLIGHT, BYTES_IN_FLIGHT_PER_CPU * self.cpus)
        self.opening: dict[Any, DocumentJob] = {}  # an opening task's result -> its document
        self.preparing: dict[Any, PageRange] = {}  # the pages object of a page task -> its range
        self.ready: deque[PageRange] = deque()  # prepared ranges whose rows wait for an actor
        self.classifying: dict[Any, tuple[Any, list[PageRange]]] = {}  # result -> (actor, ranges)

    # -- the loop -----------------------------------------------------------------------
    def go(self) -> None:
        while self.files or self.docs:
            self._admit()
            self._feed()
            waiting = list(self.opening) + list(self.preparing) + list(self.classifying)
            if not waiting:
                self._finish_documents()
                continue
            ready, _ = ray.wait(waiting, num_returns=1, timeout=1.0)
            if ready:  # take everything that is ready, not one at a time
                ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0)
            for ref in ready:
                if ref in self.opening:
                    self._opened(ref)
                elif ref in self.preparing:
                    self._prepared(ref)
                else:
                    self._classified(ref)
            self._finish_documents()

    def _admit(self) -> None:
        """Read documents into the object store and have them opened while the window has room."""
        while self.files and (not self.docs or (len(self.docs) < DOCS_PER_CPU * self.cpus
                                                and self.bytes_in_flight < self.max_bytes)):
            path = self.files.popleft()
            t0 = time.perf_counter()
            problem = file_problem(path)  # e.g. replaced by a pipe since it was listed: never read it
            try:
                if problem:
                    raise DocumentError(problem)
                data = path.read_bytes()
            except DocumentError as exc:
                self._emit_failed(path, str(exc), None, t0)
                continue
            except OSError as exc:
                self._emit_failed(path, f"{path}: cannot be read ({exc.strerror or exc})", None, t0)
                continue
            job = DocumentJob(path, hashlib.sha256(data).hexdigest(), started=t0, data=ray.put(data),
                              size=len(data))
            self.bytes_in_flight += len(data)
            self.docs.append(job)
            # Opened on the cluster (in a child process there): a file that crashes MuPDF costs itself only.
            ref = open_document.options(max_retries=PREP_RETRIES).remote(job.data, str(path), self.options)
            self.opening[ref] = job

    def _opened(self, ref: Any) -> None:
        job = self.opening.pop(ref)
        opened, failure = _task_result(ref, f"{job.path}: could not be opened on the cluster",
                                       f"{job.path}: the worker opening it died")
        failure = failure or (opened if isinstance(opened, str) else None)  # a str: why it cannot be opened
        if failure:  # it cannot be analysed; its hash lets --resume know it is done
            self.docs.remove(job)
            self._release(job)
            self._emit_failed(job.path, failure, job.sha256, job.started)
            return
        last = min(opened.pages, self.options.max_pages) if self.options.max_pages else opened.pages
        for r in job.plan(opened.pages, last, opened.notices, self.pages_per_task):
            self._submit(r)

    def _release(self, job: DocumentJob) -> None:
        self.bytes_in_flight -= job.size
        job.data = None

    def _emit_failed(self, path: Path, message: str, sha: str | None, t0: float) -> None:
        self.emit(plan.failed_document(path, message, self.info, self.device, sha, t0).to_json())

    def _submit(self, r: PageRange) -> None:
        pages_ref, rows_ref = prepare_pages.options(max_retries=PREP_RETRIES).remote(
            r.doc.data, str(r.doc.path), r.start, r.stop, self.height, self.width, self.options)
        r.rows_ref = rows_ref
        self.preparing[pages_ref] = r

    def _prepared(self, ref: Any) -> None:
        r = self.preparing.pop(ref)
        pages, failure = _task_result(ref, f"{r.label} could not be prepared", f"the worker preparing {r.label} died")
        if failure:
            r.fail(failure)
            return
        r.prepared(pages, sum(len(p.boxes) for p in pages if p.error is None))
        if not r.done:
            self.ready.append(r)

    def _feed(self) -> None:
        """Give prepared rows to the least busy actors, several ranges (documents) per batch."""
        per_call = 4 * self.batch_size
        if not self.actors:  # every actor died and none may be started: nothing can classify these rows
            while self.ready:
                r = self.ready.popleft()
                r.fail(f"the rows of {r.label} could not be classified (no inference worker is left)")
            return
        while self.ready:
            actor = min(self.actors, key=lambda a: self.load[a])
            if self.load[actor] >= CALLS_PER_ACTOR:
                return
            batch, rows = [], 0
            while self.ready and (not batch or rows + self.ready[0].rows <= per_call):
                r = self.ready.popleft()
                batch.append(r)
                rows += r.rows
            self.classifying[actor.logits.remote(*[r.rows_ref for r in batch])] = (actor, batch)
            self.load[actor] += 1

    def _classified(self, ref: Any) -> None:
        actor, batch = self.classifying.pop(ref)
        if actor in self.load:
            self.load[actor] -= 1
        try:
            logits, device, notice = ray.get(ref)
        except RayTaskError as exc:  # inference itself failed (not a dead worker)
            for r in batch:
                r.fail(f"the rows of {r.label} could not be classified ({_why(exc)})")
            return
        except RayError as exc:  # the actor died, or the rows were lost with a node
            dead_actor = isinstance(exc, RayActorError)
            if dead_actor and not isinstance(exc, ActorUnavailableError):
                self._lose(actor)
            for r in batch:
                self._retry(r, exc, same_rows=dead_actor)
            return
        for r, z in zip(batch, logits):
            r.classified(z, device, notice)

    def _lose(self, actor: Any) -> None:
        """An actor gone for good: out of the pool, and a new one in its place while any are left."""
        if actor not in self.load:
            return
        self.actors.remove(actor)
        del self.load[actor]
        if self.replacements > 0:
            self.replacements -= 1
            fresh = self._new_actor()
            self.actors.append(fresh)
            self.load[fresh] = 0
            self.say("an inference worker died; a new one was started")
        elif not self.actors:
            self.say("no inference worker is left")

    def _retry(self, r: PageRange, exc: BaseException, same_rows: bool) -> None:
        r.attempts += 1
        if r.attempts > RANGE_RETRIES:
            r.fail(f"the rows of {r.label} were lost {r.attempts} times with their workers "
                   f"({type(exc).__name__}); skipped")
        elif same_rows:
            self.ready.appendleft(r)  # the rows are still in the object store: to another actor
        else:
            self._submit(r)  # prepared again: the rows went with the node that held them

    def _finish_documents(self) -> None:
        still = []
        for job in self.docs:
            if job.done:
                self._release(job)
                self.emit(job.result(self.info, self.threshold, self.device).to_json())
            else:
                still.append(job)
        self.docs = still


def _task_result(ref: Any, failed: str, died: str) -> tuple[Any, str | None]:
    """A preparation task's value, or what to tell people: ``failed (why)`` when our code raised on the
    worker (a full disk for the copy, ...), ``died N times`` when the worker or its node died through
    every retry."""
    try:
        return ray.get(ref), None
    except RayTaskError as exc:
        return None, f"{failed} ({_why(exc)})"
    except RayError as exc:
        return None, f"{died} {PREP_RETRIES + 1} times ({type(exc).__name__}); skipped"


def _why(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, ModelError):
        return str(cause)
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"[:300]
