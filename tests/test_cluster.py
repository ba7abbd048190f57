"""`bytehoven analyze --engine ray` on a local Ray started by these tests (2 CPUs, loopback only).

Results must equal the local engine's; a worker or an inference actor killed mid-run, or the driver
killed and the run resumed, must leave every document in the results exactly once."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from bytehoven_desktop import cli
from bytehoven_desktop.cluster import plan
from fixtures import make_corrupt_pdf, make_scanned_pdf, make_score_pdf, make_score_png, make_text_pdf
from model_factory import make_model

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (the [cluster] extra)")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines (a driver killed mid-write may leave half of one, repaired by --resume)."""
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


def same_result(a: Any, b: Any, where: str = "") -> None:
    """Equal but for timing; probabilities to 1e-4 (ONNX Runtime's sums over batches of other sizes
    may move the last digit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        keys.discard("seconds")
        for k in keys:
            assert k in a and k in b, f"{where}.{k}"
            same_result(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same_result(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-4), where
    else:
        assert a == b, where


def by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(d["path"]).name: d for d in docs}


# -- no Ray: the command says how to install it -------------------------------------------------
def test_without_ray_says_how_to_install(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    pdf = make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert cli.main(["analyze", str(pdf), "--engine", "ray", "--model", str(tiny_model), "-q"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'bytehoven-desktop[cluster]'" in err and "Traceback" not in err


def test_long_documents_are_cut_into_page_ranges() -> None:
    assert plan.split_pages(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert plan.split_pages(3, 16) == [(0, 3)]
    assert plan.split_pages(1000, 16)[-1] == (992, 1000) and len(plan.split_pages(1000, 16)) == 63


# -- on a local Ray ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One local Ray for the module, as `--engine ray` starts it (2 CPUs, bound to 127.0.0.1)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (the [cluster] extra)")
    from bytehoven_desktop.cluster import session

    s = session.connect(None, cpus=2)
    assert s.address.startswith("127.0.0.1:")
    yield s
    session.close(s)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cluster") / "scores"
    d.mkdir()
    make_score_pdf(d / "long.pdf", pages=20, systems_per_page=2, seed=1)  # pages 1-16 and 17-20
    make_score_pdf(d / "two.pdf", pages=2, systems_per_page=3, seed=2)
    make_score_pdf(d / "one.pdf", pages=1, systems_per_page=5, seed=3)
    make_score_png(d / "scan.png", systems=3, seed=4)
    make_scanned_pdf(d / "scanned.pdf", systems=3, seed=6)
    make_text_pdf(d / "preface.pdf")
    make_corrupt_pdf(d / "broken.pdf")
    whole = make_score_pdf(d / "cut.pdf", pages=3, systems_per_page=3, seed=5).read_bytes()
    (d / "cut.pdf").write_bytes(whole[: len(whole) * 2 // 3])  # a download cut short: repaired, pages lost
    return d


def run_cli(folder: Path, model: Path, out: Path, *extra: str) -> int:
    return cli.main(["analyze", str(folder), "--model", str(model), "--out", str(out), "-q", "--threads", "1",
                     *extra])


@pytest.fixture(scope="module")
def scan_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a temperature of its own for scans and a pooling sharpness: both engines must
    calibrate per page and pool alike."""
    return make_model(tmp_path_factory.mktemp("model") / "scan-t.onnx",
                      metadata={"temperature": "1.5", "scan_temperature": "0.6", "pool_sharpness": "0.3"})


@pytest.fixture(scope="module")
def local_results(library: Path, scan_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    assert run_cli(library, scan_model, out) == 0
    return by_name(read_jsonl(out))


@needs_ray
def test_same_results_as_the_local_engine(ray_session: Any, library: Path, scan_model: Path,
                                          local_results: dict[str, Any], tmp_path: Path) -> None:
    assert plan.split_pages(20) == [(0, 16), (16, 20)]
    out = tmp_path / "ray.jsonl"
    assert run_cli(library, scan_model, out, "--engine", "ray") == 0
    docs = read_jsonl(out)
    ray_results = by_name(docs)
    assert len(docs) == len(ray_results) == 8
    assert set(ray_results) == set(local_results)
    for name, local in local_results.items():
        got = ray_results[name]
        assert (got["pages"], got["rows"], got["composer"]) == (local["pages"], local["rows"], local["composer"])
        same_result(got, local, name)
    assert ray_results["long.pdf"]["pages"] == 20 and ray_results["long.pdf"]["rows"] == 40
    assert [len(p["systems"]) for p in ray_results["long.pdf"]["page_results"]] == [2] * 20
    assert ray_results["preface.pdf"]["reason"] == "no music"
    assert ray_results["broken.pdf"]["error"] and ray_results["broken.pdf"]["sha256"]
    assert all(d["device"] == "cpu" for d in docs)


def _ray_processes(prefix: str) -> list[int]:
    """Ray workers whose title starts with ``prefix`` (Ray names a worker after what it runs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                title = fh.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith(prefix):
            found.append(int(entry))
    return found


@needs_ray
def test_killed_workers_lose_and_repeat_nothing(ray_session: Any, tmp_path: Path, tiny_model: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        make_score_pdf(folder / f"s{i}.pdf", pages=3, systems_per_page=3, seed=10 + i)
    local = tmp_path / "local.jsonl"
    assert run_cli(folder, tiny_model, local) == 0
    killed: dict[str, int] = {}
    stop = threading.Event()

    def killer() -> None:
        # First a worker preparing pages, then the inference actor: both while the run is on.
        for what in ("ray::prepare_pages", "ray::InferenceActor"):
            while not stop.is_set():
                pids = _ray_processes(what)
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed[what] = pids[0]
                    break
                time.sleep(0.02)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    out = tmp_path / "ray.csv"
    try:
        assert run_cli(folder, tiny_model, out, "--engine", "ray") == 0
    finally:
        stop.set()
        watcher.join(5)
    assert set(killed) == {"ray::prepare_pages", "ray::InferenceActor"}
    out_text, err = capsys.readouterr()
    assert out_text == ""  # what Ray says of the dead workers goes to stderr, never among JSON Lines
    assert "inference worker died" in err and "Traceback" not in err
    rows = list(csv.DictReader(out.open()))
    assert sorted(Path(r["path"]).name for r in rows) == [f"s{i}.pdf" for i in range(6)]  # each exactly once
    expected = by_name(read_jsonl(local))
    for r in rows:
        want = expected[Path(r["path"]).name]
        assert r["error"] == "" and int(r["rows"]) == want["rows"] == 9 and int(r["pages"]) == 3
        assert r["composer"] == (want["composer"] or "")
        assert all(float(r[f"p_{c}"]) == pytest.approx(p, abs=1e-4) for c, p in want["composers"].items())


@needs_ray
def test_driver_killed_then_resume(ray_session: Any, tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(8):
        make_score_pdf(folder / f"d{i:02d}.pdf", pages=2, systems_per_page=3, seed=30 + i)
    out = tmp_path / "batch.jsonl"
    # A second driver, in its own process, joins the tests' cluster and is killed mid-run.
    cmd = [sys.executable, "-m", "bytehoven_desktop", "analyze", str(folder), "--model", str(tiny_model),
           "--out", str(out), "--resume", "-q", "--threads", "1", "--engine", "ray", "--ray-address",
           ray_session.address]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_jsonl(out)
    assert 2 <= len(before) < 8  # at most 2 x 2 documents are in flight: the kill came mid-run
    assert run_cli(folder, tiny_model, out, "--resume", "--engine", "ray") == 0
    docs = read_jsonl(out)
    names = sorted(Path(d["path"]).name for d in docs)
    assert names == [f"d{i:02d}.pdf" for i in range(8)]  # nothing lost, nothing repeated
    assert docs[: len(before)] == before  # what was written before the kill is kept as it was
    assert all(d["error"] is None and d["pages"] == 2 and d["rows"] == 6 for d in docs)
