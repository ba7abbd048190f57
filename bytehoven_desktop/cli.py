"""``bytehoven analyze``: score files and folders in, one JSON object per document out."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Sequence

from .batch import ResultsFile, iter_documents
from .classifier import DEVICES, Classifier, ModelError, file_sha256, get_classifier
from .library import Library, LibraryError, default_library_path
from .pipeline import AnalysisOptions, analyze, start_page_server
from .report import dumps, error_result


def add_analysis_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto", help="where inference runs (default: auto)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N", help="rows per inference batch")
    p.add_argument("--model", type=Path, default=None, metavar="FILE", help="ONNX model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for inference")
    p.add_argument("--threshold", type=float, default=None,
                   help="abstain below this confidence (default: the model's calibrated value)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bytehoven analyze",
                                     description="Find every staff system in piano scores and say whose style it is.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="PDF or image files, or folders of them")
    parser.add_argument("-r", "--recursive", action="store_true", help="also look in sub-folders")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write results to FILE.jsonl or FILE.csv (default: JSON Lines on stdout)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --out and skip those documents (and, with --library, "
                             "those the library holds for this model, whose stored results are written)")
    parser.add_argument("--library", nargs="?", const="", default=None, metavar="PATH",
                        help="also keep every result in the results library (default file: "
                             f"{default_library_path()})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="documents analysed in parallel processes (--engine ray: CPUs of the local Ray)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="analyse here (default), or on a Ray cluster (needs the [cluster] extra)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="the Ray cluster to join (default: $RAY_ADDRESS, else a local Ray for this run)")
    parser.add_argument("--max-pages", type=int, default=None, metavar="N", help="analyse at most N pages per document")
    parser.add_argument("--page-timeout", type=float, default=60.0, metavar="S", help="skip a page after S seconds")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_analysis_arguments(parser)
    return parser


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str) -> str:
    """A message for the terminal: control characters in a file name (a newline, an escape
    sequence) are shown escaped, never acted on."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _progress(total: int, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="doc", file=sys.stderr, disable=quiet or None, dynamic_ncols=True)


# -- worker processes (--jobs > 1) ------------------------------------------------------
_worker_clf: Classifier | None = None
_worker_opts: AnalysisOptions | None = None


def _worker_init(model: str | None, device: str, threads: int | None, batch: int, opts: AnalysisOptions) -> None:
    global _worker_clf, _worker_opts
    _worker_clf = get_classifier(model, device, threads, batch)
    _worker_opts = opts


def _worker_analyze(path: str) -> dict[str, Any]:
    assert _worker_clf is not None and _worker_opts is not None
    return analyze(path, _worker_clf, _worker_opts).to_json()


def run_analyze(argv: Sequence[str]) -> int:
    try:
        return _run_analyze(argv)
    except KeyboardInterrupt:  # Ctrl-C while loading the model or listing files: no traceback
        print("bytehoven: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`bytehoven analyze … | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _run_analyze(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.resume and args.out is None and args.library is None:
        print("bytehoven: --resume needs --out FILE or --library", file=sys.stderr)
        return 2
    if args.library and os.path.isdir(args.library):
        print(f"bytehoven: --library needs a file, and {_printable(args.library)} is a folder", file=sys.stderr)
        return 2
    if args.out is not None and args.out.suffix.lower() not in (".jsonl", ".json", ".csv"):
        print("bytehoven: --out must end in .jsonl or .csv", file=sys.stderr)
        return 2
    if args.engine == "ray":
        from .cluster import missing_ray  # the cluster package, the only place Ray is imported

        problem = missing_ray()
        if problem:
            print(f"bytehoven: {_printable(problem)}", file=sys.stderr)
            return 2
    jobs = max(1, args.jobs)
    threads = args.threads or max(1, (os.cpu_count() or 1) // jobs)
    try:
        clf = get_classifier(args.model, args.device, threads, args.batch_size)
    except ModelError as exc:
        print(f"bytehoven: {_printable(str(exc))}", file=sys.stderr)
        return 2
    if clf.notice:
        print(f"bytehoven: {_printable(clf.notice)}", file=sys.stderr)
    # isolate: a batch must survive a page that hangs or crashes the PDF library (see pipeline).
    opts = AnalysisOptions(threshold=args.threshold, page_timeout=args.page_timeout, max_pages=args.max_pages,
                           isolate=True)
    start_page_server()

    problems: list[tuple[str, str]] = []
    files = list(iter_documents(args.paths, args.recursive, problems))
    sink = ResultsFile(args.out, clf.labels, args.resume) if args.out else None
    library = None
    if args.library is not None:
        library = Library(args.library or None)
        if library.notice:
            print(f"bytehoven: {_printable(library.notice)}", file=sys.stderr)
    known: set[str] = set()
    if library is not None and args.resume:
        try:
            known = library.current_hashes(clf.info.sha256)
        except LibraryError as exc:  # the batch still runs: it only analyses more than it had to
            print(f"bytehoven: {_printable(str(exc))}", file=sys.stderr)
    ok = 0
    failures = 0
    library_failed = False

    def emit(doc: dict[str, Any], bar: Any, stored: bool = False) -> None:
        nonlocal ok, failures, library_failed
        if doc.get("error"):
            failures += 1
            bar.write(f"bytehoven: {_printable(doc['error'])}", file=sys.stderr)
        else:
            ok += 1
        # The library first: a result written out is always in the library too.
        if library is not None and not stored and not library_failed:
            try:
                library.store(doc)
            except LibraryError as exc:  # said once; the batch goes on with its output
                library_failed = True
                bar.write(f"bytehoven: {_printable(str(exc))}; results are no longer kept there", file=sys.stderr)
        if sink is not None:
            sink.append(doc)
        else:
            sys.stdout.write(dumps(doc) + "\n")
            sys.stdout.flush()
        bar.update(1)

    with _progress(len(files) + len(problems), args.quiet) as bar:
        skipped = from_library = 0
        for path, message in problems:
            if sink is not None and args.resume and sink.is_done(None, path):
                skipped += 1
                bar.update(1)
                continue
            emit(error_result(path, message, clf.device, clf.info.name, clf.info.sha256).to_json(), bar)
        todo: list[Path] = []
        for f in files:
            if args.resume:
                try:
                    sha = file_sha256(f)
                except OSError:
                    sha = None
                if sink is not None and sink.is_done(sha, str(f)):
                    skipped += 1
                    bar.update(1)
                    continue
                if library is not None and sha in known:
                    taken = _from_library(library, sha, clf, f)
                    if taken is not None:
                        from_library += 1
                        emit(taken, bar, stored=True)
                        continue
            todo.append(f)
        try:
            if args.engine == "ray":
                if not _run_on_ray(todo, args, clf, opts, emit, bar):
                    if sink is not None:
                        sink.close()
                    return 2
            elif jobs == 1:
                for f in todo:
                    emit(analyze(f, clf, opts).to_json(), bar)
            else:
                _run_parallel(todo, args, jobs, threads, opts, emit, bar)
        except KeyboardInterrupt:
            bar.write("bytehoven: interrupted; finished documents are saved" +
                      (" (continue with --resume)" if sink or library else ""), file=sys.stderr)
            if sink is not None:
                sink.close()
            return 130
    if sink is not None:
        sink.close()
    if from_library:
        print(f"bytehoven: {from_library} document(s) taken from the library, not analysed again",
              file=sys.stderr)
    if skipped:
        print(f"bytehoven: {skipped} document(s) already in {_printable(str(args.out))}, skipped",
              file=sys.stderr)
    if ok == 0 and (failures or not skipped):
        if not files and not problems:
            print("bytehoven: no PDF or image files found", file=sys.stderr)
        return 1
    return 0


def _run_parallel(todo: list[Path], args: argparse.Namespace, jobs: int, threads: int, opts: AnalysisOptions,
                  emit: Any, bar: Any) -> None:
    init = (str(args.model) if args.model else None, args.device, threads, args.batch_size, opts)
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=init)
    try:
        # (file, suspect): when a worker dies (a crash inside a PDF library, the OOM killer) every
        # document in flight fails with it. Those are retried one at a time, so that only the one
        # that crashes again on its own is reported, and the rest still get their results.
        queue: list[tuple[Path, bool]] = [(f, False) for f in todo]
        running: dict[Future, tuple[Path, bool]] = {}
        while queue or running:
            while queue and len(running) < jobs * 2 and not any(s for _, s in running.values()):
                if queue[0][1] and running:
                    break  # a suspect waits to run alone
                item = queue.pop(0)
                running[pool.submit(_worker_analyze, str(item[0]))] = item
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                f, suspect = running.pop(fut)
                try:
                    emit(fut.result(), bar)
                except BrokenProcessPool:
                    broken = True
                    if suspect:  # with its hash, so that --resume does not crash on it again
                        emit(error_result(str(f), f"{f}: analysis crashed (the worker process died)",
                                          sha256=_sha_or_none(f)).to_json(), bar)
                    else:
                        queue.insert(0, (f, True))
                except Exception as exc:
                    emit(error_result(str(f), f"{f}: analysis failed ({type(exc).__name__}: {exc})").to_json(), bar)
            if broken:
                queue[:0] = [(f, True) for f, _ in running.values()]
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=init)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _from_library(library: Library, sha: str, clf: Classifier, f: Path) -> dict[str, Any] | None:
    """The library's result for this document and model, under the file's present name."""
    try:
        stored = library.lookup(sha, clf.info.sha256)
        if stored is None or stored.outdated:
            return None
        if stored.doc.get("path") != str(f):
            library.seen_at(sha, str(f))
    except LibraryError as exc:
        print(f"bytehoven: {_printable(str(exc))}", file=sys.stderr)
        return None
    return dict(stored.doc, path=str(f))


def _run_on_ray(todo: list[Path], args: argparse.Namespace, clf: Classifier, opts: AnalysisOptions,
                emit: Any, bar: Any) -> bool:
    """``--engine ray``: the documents on a Ray cluster; False when it could not be used (said why)."""
    from .cluster import ClusterError, run_on_ray

    def say(message: str) -> None:
        bar.write(f"bytehoven: {_printable(message)}", file=sys.stderr)

    try:  # the model checked here is the one the cluster's workers load
        run_on_ray(todo, model=clf.info.path, device=args.device, batch_size=args.batch_size, threads=args.threads,
                   options=opts, address=args.ray_address, cpus=args.jobs if args.jobs > 1 else None,
                   emit=lambda doc: emit(doc, bar), say=say)
    except ClusterError as exc:
        say(str(exc))
        return False
    return True


def _sha_or_none(f: Path) -> str | None:
    try:
        return file_sha256(f)
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "analyze":
        argv = argv[1:]
    return run_analyze(argv)


if __name__ == "__main__":  # pragma: no cover
    threading.current_thread().name = "main"
    sys.exit(main())
