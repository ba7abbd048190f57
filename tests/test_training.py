"""The training pipeline on small data it makes itself: split integrity, calibration maths,
a few ResNet50 steps, ONNX export with metadata, and the app loading the result."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bytehoven_desktop.training.calibration import abstain_threshold, composer_weights, ece, fit_temperature
from bytehoven_desktop.training.corpus import assign_splits, read_sources, source_split

torch = pytest.importorskip("torch")


def _manifest(tmp: Path) -> Path:
    rows = []
    for c, groups in {"bach": 6, "chopin": 4, "czerny": 1, "handel": 2}.items():
        for g in range(groups):
            for w in range(3):
                for src in ("a", "b"):  # the same work in two sources
                    rows.append({"path": f"scores/{c}/{src}/{g}-{w}.krn", "composer": c,
                                 "work_id": f"{c}:op{g}-{w}", "group": f"{c}:op{g}", "title": "", "source_repo": "",
                                 "license": "", "format": "krn", "note": ""})
    with (tmp / "manifest.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    return tmp


def _dataset(data: Path, rows: np.ndarray, meta: list[dict], h: int, w: int) -> Path:
    """A dataset folder as `bytehoven dataset` writes it: rows, their metadata, the input size."""
    data.mkdir()
    np.save(data / "rows.npy", rows)
    with (data / "rows.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(meta[0]))
        wr.writeheader()
        wr.writerows(meta)
    (data / "dataset.json").write_text(json.dumps({"height": h, "width": w}))
    return data


def test_split_by_group_keeps_works_together(tmp_path: Path) -> None:
    sources = read_sources(_manifest(tmp_path))
    split = assign_splits(sources)
    side_of_work: dict[str, set] = {}
    for s in sources:
        side_of_work.setdefault(s.work_id, set()).add(source_split(s, split))
    assert all(len(v) == 1 for v in side_of_work.values())  # a work never straddles splits
    by_comp: dict[str, set] = {}
    for g, side in split.items():
        by_comp.setdefault(g.split(":")[0], set()).add(side)
    assert by_comp["bach"] == {"train", "dev", "test"}
    assert by_comp["czerny"] == {"train"}  # one group: nothing can be held out
    assert by_comp["handel"] == {"train", "test"}
    assert split == assign_splits(read_sources(tmp_path))  # stable


def test_temperature_and_ece() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 5))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from softmax(logits): T=1 is right
    true_t = 0.5  # a model twice as confident as it should be
    t = fit_temperature(logits / true_t, y)
    assert abs(t - 1 / true_t) < 0.25
    sharp = np.exp(logits / true_t)
    sharp /= sharp.sum(1, keepdims=True)
    fixed = np.exp(logits / true_t / t)
    fixed /= fixed.sum(1, keepdims=True)
    assert ece(fixed, y) < ece(sharp, y) and ece(fixed, y) < 0.03


def test_the_temperature_weighs_every_composer_alike() -> None:
    rng = np.random.default_rng(2)
    # Composer 0: many rows, calibrated at T = 1. Composer 1: few rows, twice too confident.
    def rows(n: int, c: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0, 1.5, (n, 3))
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = np.array([rng.choice(3, p=r) for r in p])
        keep = y == c  # rows whose true composer is c
        return logits[keep] * sharpen, y[keep]
    la, ya = rows(9000, 0, 1.0)
    lb, yb = rows(900, 1, 2.0)
    logits, y = np.concatenate([la, lb]), np.concatenate([ya, yb])
    w = composer_weights(y)
    assert w.sum() == pytest.approx(1.0) and w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    plain, balanced = fit_temperature(logits, y, balanced=False), fit_temperature(logits, y)
    # Balanced is the fit on a dev set where both composers had as many rows.
    rep = np.concatenate([np.arange(len(ya))] + [len(ya) + np.arange(len(yb))] * (len(ya) // len(yb)))
    equalised = fit_temperature(logits[rep], y[rep], balanced=False)
    assert balanced == pytest.approx(equalised, rel=0.05)
    assert balanced > plain  # the over-confident minority now counts as much as the majority


def test_pool_sharpness_follows_how_far_a_pages_rows_agree() -> None:
    from bytehoven_desktop.training.calibration import fit_pool_sharpness

    rng = np.random.default_rng(4)
    n_pages, per_page, k = 300, 6, 5
    y = np.repeat(rng.integers(0, k, n_pages), per_page)
    pages = [f"d{i // 2}#{i % 2}" for i in range(n_pages) for _ in range(per_page)]  # two pages a document

    def calibrated_rows(shared: bool) -> np.ndarray:
        # Each row's evidence: a noisy vote for the true composer. Calibrated rows (softmax of the evidence
        # is the posterior). Shared: a page's rows repeat one draw (no new evidence); else independent.
        noise = rng.normal(0, 1.0, (n_pages, k)).repeat(per_page, 0) if shared else rng.normal(0, 1.0, (len(y), k))
        z = noise + 1.0 * np.eye(k)[y]
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    copies, independent = fit_pool_sharpness(calibrated_rows(True), y, pages), \
        fit_pool_sharpness(calibrated_rows(False), y, pages)
    assert copies < 0.15 < 0.6 < independent <= 1.0


def test_abstain_threshold_sits_where_pages_turn_unreliable() -> None:
    rng = np.random.default_rng(1)
    n = 400
    conf = rng.uniform(0.36, 0.95, n)
    y = np.zeros(n, int)
    right = rng.random(n) < conf  # calibrated: right with probability = confidence
    probs = np.repeat(((1 - conf) / 2)[:, None], 3, axis=1)
    probs[np.arange(n), np.where(right, 0, 1)] = conf
    thr = abstain_threshold(probs, y, [str(i) for i in range(n)])
    assert 0.38 < thr < 0.65  # where a page becomes more likely right than wrong (0.5)


def test_train_export_and_load_in_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bytehoven_desktop.classifier import Classifier
    from bytehoven_desktop.training import calibration
    from bytehoven_desktop.training.export import export
    from bytehoven_desktop.training.train import train

    monkeypatch.setattr(calibration, "MIN_SCAN_ROWS", 4)  # the 12 dev scan rows below fit their own temperature
    h, w = 32, 160
    rng = np.random.default_rng(0)
    n = 60
    rows = np.full((n, round(h * 1.5), round(w * 1.5)), 255, np.uint8)
    meta = []
    for i in range(n):
        comp = ["bach", "chopin", "mozart"][i % 3]
        rows[i, :, (i % 3) * 60: (i % 3) * 60 + 40] = rng.integers(0, 120)  # learnable
        meta.append({"index": i, "composer": comp, "split": "train" if i < 36 else "dev",
                     "kind": "scan" if i >= 48 else "symbolic",
                     "variant": 0, "group": f"g{i % 5}", "work_id": "w", "source": f"s{i % 6}", "page": 1})
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    run = tmp_path / "run"
    best = train(data, run, samples=4 * 8, batch=8, threads=1, checkpoint_minutes=100)
    assert best.exists() and (run / "last.pt").exists() and "checkpoint step 4" in (run / "train.log").read_text()
    # Resuming a finished run does nothing more and keeps the checkpoint.
    train(data, run, samples=4 * 8, batch=8, threads=1)
    out = tmp_path / "model.onnx"
    report = export(best, out, data, corpus_sha256="abc", name="test-resnet")
    assert report["dev_rows"] == 12 and report["temperature"] > 0
    # Dev scans are calibrated apart, and the app reads their temperature.
    assert report["dev_scan_rows"] == 12 and report["scan_temperature"] > 0
    clf = Classifier(out, device="cpu", threads=1)
    assert clf.info.scan_temperature == pytest.approx(report["scan_temperature"], rel=1e-3)
    assert clf.labels == ("bach", "chopin", "mozart") and clf.input_size == (h, w) and clf.has_cam
    assert clf.info.metadata["corpus_manifest_sha256"] == "abc"
    probs, cam = clf.explain(np.full((h, w), 255, np.uint8))
    assert probs.shape == (3,) and cam.shape == (h, w)
    # A later stage starts from those weights with its own schedule, and can leave out rows.
    stage2 = tmp_path / "stage2"
    train(data, stage2, samples=2 * 8, batch=8, threads=1, init=best, warmup=1, transposed=False)
    log = (stage2 / "train.log").read_text()
    assert f"initialised from {best}" in log and "checkpoint step 2" in log
    assert json.loads((stage2 / "config.json").read_text())["transposed"] is False
    # The exported model says how it was made, all stages counted.
    from bytehoven_desktop.training.export import lineage

    stages = lineage(stage2 / "best.pt")
    assert [(st["run"], st["steps"], st["batch"]) for st in stages] == [(str(run), 4, 8), (str(stage2), 2, 8)]
    export(stage2 / "best.pt", out, data, corpus_sha256="abc", name="test-resnet")
    meta = Classifier(out, device="cpu", threads=1).info.metadata
    assert meta["training_steps"] == "6" and meta["training_samples"] == "48"
    assert len(json.loads(meta["training_stages"])) == 2


def test_which_rows_are_transposed_is_known_without_rendering() -> None:
    from bytehoven_desktop.training.dataset import variant_style
    from bytehoven_desktop.training.train import transposed_rows

    names = [f"symbolic/x/piece{i}.krn" for i in range(40)]
    # The first variant of a score is never transposed; later ones sometimes are.
    assert all(variant_style(n, 0).transpose is None for n in names)
    later = [variant_style(n, 2).transpose for n in names]
    assert 0 < sum(t is not None for t in later) < len(names)
    assert later == [variant_style(n, 2).transpose for n in names]  # a pure function of the name
    meta = [{"kind": "symbolic", "source": n, "variant": "2"} for n in names] + [
        {"kind": "scan", "source": "scans/a.pdf", "variant": "2"}]
    flags = transposed_rows(meta)
    assert flags.tolist() == [t is not None for t in later] + [False]


def test_training_can_leave_an_engraver_out(tmp_path: Path) -> None:
    from bytehoven_desktop.training.train import train

    h, w = 32, 160
    n = 36
    rows = np.full((n, round(h * 1.5), round(w * 1.5)), 255, np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": "train" if i < 30 else "dev",
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i}", "page": 1,
             "engraver": ["verovio", "lilypond", "musescore"][i % 3], "scan_look": 0} for i in range(n)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    run = tmp_path / "run"
    train(data, run, samples=8, batch=8, threads=1, leave_out=("musescore",))
    log = (run / "train.log").read_text()
    assert "start: 20 train rows, 4 dev rows" in log  # 30 train and 6 dev rows, a third of each MuseScore
    assert json.loads((run / "config.json").read_text())["leave_out_engravers"] == ["musescore"]


def test_a_released_onnx_model_continues_training(tmp_path: Path) -> None:
    """Only the shipped .onnx survives on a fresh machine: its folded BatchNorms are unfolded into a
    network that gives the same logits, in eval mode and (statistics fitted) in train mode."""
    import onnxruntime as ort

    from bytehoven_desktop.training.export import export, lineage
    from bytehoven_desktop.training.model import ResNet50
    from bytehoven_desktop.training.onnx_weights import net_from_onnx
    from bytehoven_desktop.training.train import train

    h, w = 32, 160
    rng = np.random.default_rng(3)
    n = 24
    rows = rng.integers(0, 256, (n, round(h * 1.5), round(w * 1.5))).astype(np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": "train" if i < 18 else "dev",
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i}", "page": 1}
            for i in range(n)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    run = tmp_path / "run"
    best = train(data, run, samples=2 * 8, batch=8, threads=1, precision="fp32")
    released = tmp_path / "released.onnx"
    export(best, released, data, corpus_sha256="abc", name="released")
    x = rng.normal(0, 1, (6, 1, h, w)).astype(np.float32)
    want = ort.InferenceSession(str(released), providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})[0]
    net, info = net_from_onnx(released, torch.from_numpy(x))
    assert isinstance(net, ResNet50) and info["name"] == "released"
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
        net.train()
        net.dropout.p = 0.0
        got_train = net(torch.from_numpy(x)).numpy()  # BN on this batch's statistics
    assert np.abs(got - want).max() < 1e-3 * max(1.0, np.abs(want).max())
    assert np.abs(got_train - want).max() < 2e-2 * max(1.0, np.abs(want).max())
    # A stage started from the released file (bf16 steps) counts the released stages in its lineage.
    stage = tmp_path / "stage"
    train(data, stage, samples=8, batch=8, threads=1, init=released, warmup=1)
    assert f"initialised from released model {released}" in (stage / "train.log").read_text()
    assert [st["run"] for st in lineage(stage / "best.pt")] == [str(run), str(stage)]


def test_a_checkpoint_is_measured_per_engraver_on_the_held_out_rows(tmp_path: Path) -> None:
    from bytehoven_desktop.training.evaluate import evaluate_checkpoint
    from bytehoven_desktop.training.train import train

    h, w = 32, 160
    rng = np.random.default_rng(5)
    meta, rows = [], []
    for i in range(60):
        split = ("train", "dev", "test")[i % 3]
        kind, engraver = (("scan", "scan") if i % 10 == 0 else ("symbolic", ["verovio", "musescore"][i % 2]))
        look = int(i % 7 == 0 and kind != "scan")
        meta.append({"index": i, "composer": ["bach", "chopin"][(i // 3) % 2], "split": split, "kind": kind,
                     "variant": 0, "group": "g", "work_id": "w", "source": f"s{i // 6}", "page": i % 2,
                     "engraver": engraver, "scan_look": look})
        rows.append(rng.integers(0, 256, (round(h * 1.5), round(w * 1.5))))
    data = _dataset(tmp_path / "data", np.array(rows, np.uint8), meta, h, w)
    best = train(data, tmp_path / "run", samples=8, batch=8, threads=1)
    report = evaluate_checkpoint(best, data, tmp_path / "eval")
    test_engraved = [m for m in meta if m["split"] == "test" and m["kind"] != "scan" and not m["scan_look"]]
    assert report["engraved"]["rows"] == len(test_engraved)
    assert report["verovio"]["rows"] + report["musescore"]["rows"] == len(test_engraved)
    assert report["scans"]["rows"] == sum(m["kind"] == "scan" and m["split"] != "train" for m in meta)
    assert 0.0 <= report["sink"]["max_sink_rate"] <= 1.0
    assert "| musescore |" in (tmp_path / "eval" / "report.md").read_text()


def test_a_dataset_serves_another_input_size_and_a_model_pools_its_views(tmp_path: Path) -> None:
    """The input-size pilots train from one build (the stored crops are resized), a model of another
    size continues from a released one, and an exported model with test-time views pools them in the
    app exactly as training measured them on dev."""
    from bytehoven_desktop.classifier import Classifier
    from bytehoven_desktop.rowimage import row_views
    from bytehoven_desktop.training.evaluate import evaluate_checkpoint
    from bytehoven_desktop.training.export import export
    from bytehoven_desktop.training.train import train

    h, w = 32, 160
    rng = np.random.default_rng(7)
    n = 30
    rows = rng.integers(0, 256, (n, round(h * 1.5), round(w * 1.5))).astype(np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": ["train", "dev", "test"][i % 3],
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i // 4}", "page": i % 2,
             "engraver": "verovio", "scan_look": 0} for i in range(n)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    small = train(data, tmp_path / "small", samples=8, batch=8, threads=1, input_size=(24, 128))
    assert json.loads((tmp_path / "small" / "config.json").read_text())["height"] == 24
    released = tmp_path / "small.onnx"
    report = export(small, released, data, name="small", views=3)
    assert report["test_views"] == 3
    clf = Classifier(released, device="cpu", threads=1)
    assert clf.input_size == (24, 128) and clf.views == 3 and clf.info.metadata["test_views"] == "3"
    x = rng.integers(0, 256, (4, 24, 128)).astype(np.uint8)
    one = Classifier(released, device="cpu", threads=1, views=1)
    want = one.logits(row_views(x, 3)).reshape(4, 3, -1).mean(axis=1)
    assert np.allclose(clf.logits(x), want, atol=1e-4)
    assert not np.allclose(one.logits(x), want, atol=1e-4)  # the views do change the answer
    # The released small model grows to the dataset's own size in a new stage.
    big = tmp_path / "big"
    train(data, big, samples=8, batch=8, threads=1, init=released, warmup=1)
    assert "its input 24x128 → 32x160" in (big / "train.log").read_text()
    # A resumed run must keep its size.
    with pytest.raises(SystemExit, match="trained at 24x128"):
        train(data, tmp_path / "small", samples=16, batch=8, threads=1)
    # Dev choices: an ONNX model measured on the dataset's rows, with and without its views.
    dev = evaluate_checkpoint(released, data, tmp_path / "dev", split="dev")
    assert dev["input"] == "24x128" and dev["test_views"] == 3
    assert dev["engraved"]["rows"] == sum(m["split"] == "dev" for m in meta)
    assert evaluate_checkpoint(released, data, tmp_path / "dev1", split="dev", views=1)["test_views"] == 1


def test_a_time_budget_sets_the_length_of_the_schedule(tmp_path: Path) -> None:
    """Pilots at equal CPU time: ``minutes`` replaces ``samples``; the length found from the first
    steps' speed is kept in the checkpoint, so a resumed run keeps the same schedule."""
    from bytehoven_desktop.training.train import TIMED_STEPS, train

    h, w = 16, 64
    rng = np.random.default_rng(9)
    rows = rng.integers(0, 256, (20, 24, 96)).astype(np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": "train" if i < 16 else "dev",
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i}", "page": 1}
            for i in range(20)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    run = tmp_path / "run"
    # A budget already spent by the timed steps: the schedule ends right after them.
    train(data, run, samples=10_000, batch=2, threads=1, minutes=0.001, warmup=1)
    log = (run / "train.log").read_text()
    assert "time budget 0.001 min" in log and f"checkpoint step {2 * TIMED_STEPS + 1}:" in log
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert state["total_steps"] == 2 * TIMED_STEPS + 1
    train(data, run, samples=10_000, batch=2, threads=1, minutes=0.001, warmup=1)
    assert f"resumed at step {2 * TIMED_STEPS + 1}/{2 * TIMED_STEPS + 1}" in (run / "train.log").read_text()


def test_auto_precision_takes_bf16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulated bf16 was 15x slower than fp32 on an AVX2-only CPU: auto must not pick it there."""
    from bytehoven_desktop.training import precision

    assert precision.resolve("auto") == ("bf16" if precision.native_bf16() else "fp32")  # this machine
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert precision.resolve("auto") == "fp32"
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.resolve("auto") == "bf16"
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    with pytest.raises(ValueError):
        precision.resolve("fp16")


def test_cutmix_pastes_a_band_of_another_row_and_mixes_the_target_by_its_width(tmp_path: Path) -> None:
    from bytehoven_desktop.training.augment import cutmix_rows
    from bytehoven_desktop.training.train import train

    xb = np.stack([np.full((8, 50), 10 * (i + 1), np.uint8) for i in range(6)])
    yb = np.array([0, 1, 2, 0, 1, 2])
    mixed, targets = cutmix_rows(xb, yb, 3, np.random.default_rng(0), p=1.0)
    assert np.allclose(targets.sum(1), 1.0)
    changed = 0
    for i in range(6):
        foreign = mixed[i] != xb[i]
        cols = np.flatnonzero(foreign.any(0))
        if len(cols) == 0:  # its partner was itself
            assert targets[i, yb[i]] == 1.0
            continue
        changed += 1
        # One contiguous full-height band, 20-50 % of the width, taken from a single other row.
        assert foreign[:, cols].all() and cols[-1] - cols[0] + 1 == len(cols) and 10 <= len(cols) <= 25
        (donor,) = {int(v) // 10 - 1 for v in np.unique(mixed[i][:, cols])}
        lam = len(cols) / 50
        if yb[donor] != yb[i]:
            assert targets[i, yb[i]] == pytest.approx(1 - lam) and targets[i, yb[donor]] == pytest.approx(lam)
    assert changed >= 4
    untouched, t0 = cutmix_rows(xb, yb, 3, np.random.default_rng(0), p=0.0)
    assert (untouched == xb).all() and (t0.argmax(1) == yb).all()

    h, w = 16, 64
    rows = np.random.default_rng(3).integers(0, 256, (12, 24, 96)).astype(np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": "train" if i < 8 else "dev",
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i}", "page": 1}
            for i in range(12)]
    run = tmp_path / "run"
    train(_dataset(tmp_path / "data", rows, meta, h, w), run, samples=16, batch=4, threads=1, cutmix=0.5, warmup=1)
    assert json.loads((run / "config.json").read_text())["cutmix"] == 0.5 and (run / "best.pt").exists()


def test_a_compiled_training_step_trains_the_plain_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train --compile` runs the step through torch.compile; the checkpoint must still be the plain
    network's (no `_orig_mod.` keys), load into a fresh ResNet50 and hold weights the steps moved.
    Dynamo traces for real, but with its eager backend: inductor's C++ build of a ResNet50 step takes
    minutes on two cores, and its code generation is torch's to test, not ours."""
    import torch

    compiled_modules = []
    real_compile = torch.compile

    def eager_compile(module, **kw):
        compiled_modules.append(type(module).__name__)
        return real_compile(module, backend="eager", **kw)

    monkeypatch.setattr(torch, "compile", eager_compile)

    from bytehoven_desktop.training.model import ResNet50
    from bytehoven_desktop.training.train import train

    h, w = 16, 64
    rows = np.random.default_rng(5).integers(0, 256, (12, 24, 96)).astype(np.uint8)
    meta = [{"index": i, "composer": ["bach", "chopin"][i % 2], "split": "train" if i < 8 else "dev",
             "kind": "symbolic", "variant": 0, "group": "g", "work_id": "w", "source": f"s{i}", "page": 1}
            for i in range(12)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    train(data, tmp_path / "start", samples=4, batch=4, threads=1, warmup=1, precision="fp32")
    start = torch.load(tmp_path / "start" / "last.pt", map_location="cpu", weights_only=False)["model"]
    run = tmp_path / "run"
    train(data, run, samples=8, batch=4, threads=1, warmup=1, precision="fp32", compiled=True,
          init=tmp_path / "start" / "last.pt")
    assert json.loads((run / "config.json").read_text())["compiled"] is True and compiled_modules == ["ResNet50"]
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 2 and not any(k.startswith("_orig_mod.") for k in state["model"])
    ResNet50(2).load_state_dict(state["model"])
    assert not torch.equal(state["model"]["fc.weight"], start["fc.weight"])


def test_calibrate_a_model_file_on_dev_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    from bytehoven_desktop.classifier import Classifier
    from bytehoven_desktop.training import calibration
    from bytehoven_desktop.training.commands import main
    from model_factory import LABELS, make_model

    monkeypatch.setattr(calibration, "MIN_SCAN_ROWS", 10)
    h, w = 32, 192
    rng = np.random.default_rng(3)
    n = 40
    rows = rng.integers(0, 256, (n, round(h * 1.5), round(w * 1.5)), dtype=np.uint8)
    meta = [{"index": i, "composer": LABELS[i % 4], "split": "train" if i < 8 else "dev",
             "kind": "scan" if i >= 24 else "symbolic", "variant": 0, "group": f"g{i % 5}", "work_id": "w",
             "source": f"s{i % 7}", "page": i % 3, "scan_look": "1" if 8 <= i < 13 else "0"} for i in range(n)]
    data = _dataset(tmp_path / "data", rows, meta, h, w)
    model = make_model(tmp_path / "m.onnx", metadata={"temperature": "9.0"})
    out = tmp_path / "calibrated.onnx"
    assert main(["calibrate", "--model", str(model), "--data", str(data), "--out", str(out), "--threads", "1"]) == 0
    info = Classifier(out, device="cpu", threads=1).info
    assert info.temperature != 9.0 and info.scan_temperature is not None and info.abstain_threshold is not None
    assert info.metadata["calibration_command"].startswith("bytehoven calibrate --model")
    assert "pool_sharpness" in info.metadata and 0.0 <= info.pool_sharpness <= 1.0
    assert info.metadata["name"] == "tiny-test-model"  # the rest of the metadata is kept
    # The temperatures are those that fit: the engraved dev rows' (born-digital pages only: no rows with
    # the synthetic scan look) and the scan dev rows' own.
    clf = Classifier(model, device="cpu", threads=1)
    from bytehoven_desktop.training.recalibrate import onnx_logits
    from bytehoven_desktop.training.train import load_data

    d = load_data(data, in_memory=False).at_size((h, w))
    for scans, t in ((False, info.temperature), (True, info.scan_temperature)):
        idx = np.array([i for i in range(n) if meta[i]["split"] == "dev" and (meta[i]["kind"] == "scan") == scans
                        and (scans or meta[i]["scan_look"] == "0")])
        assert len(idx) == (16 if scans else 11)
        y = np.array([LABELS.index(meta[i]["composer"]) for i in idx])
        assert t == pytest.approx(calibration.fit_temperature(onnx_logits(clf, d, idx), y), rel=1e-3)
    # Weights untouched.
    a, b = onnx.load(str(model)), onnx.load(str(out))
    assert [x.SerializeToString() for x in a.graph.initializer] == [x.SerializeToString() for x in b.graph.initializer]
    # Too few dev scans: no scan temperature, scans are calibrated as engravings.
    monkeypatch.setattr(calibration, "MIN_SCAN_ROWS", 1000)
    assert main(["calibrate", "--model", str(out), "--data", str(data), "--out", str(out), "--name", "renamed"]) == 0
    info = Classifier(out, device="cpu", threads=1).info
    assert info.scan_temperature is None and info.name == "renamed"


def test_calibrate_on_the_corpus_dev_groups_cut_as_the_app_cuts_them(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from bytehoven_desktop.classifier import Classifier
    from bytehoven_desktop.training import evaluate, recalibrate
    from model_factory import LABELS, make_model

    rng = np.random.default_rng(5)
    seen: dict = {}

    def task(key: str, composer: str, kind: str) -> SimpleNamespace:
        return SimpleNamespace(key=key, source=SimpleNamespace(composer=composer, kind=kind))

    held = [task("a", LABELS[0], "symbolic"), task("b", LABELS[1], "engraved"), task("c", LABELS[2], "scan"),
            task("d", "nobody", "symbolic"), task("e", LABELS[0], "symbolic")]
    rows = {k: (rng.integers(0, 256, (n, 32, 192), dtype=np.uint8), np.arange(n) % 2 + 1)
            for k, n in (("a", 3), ("b", 2), ("c", 4), ("d", 2))}  # "e": its engraving failed, no rows

    def fake_held_out_rows(corpus: Path, work: Path, split: str, h: int, w: int, **kw: object) -> tuple:
        seen.update(split=split, size=(h, w), work=work, **kw)
        return held, rows, []

    monkeypatch.setattr(evaluate, "held_out_rows", fake_held_out_rows)
    clf = Classifier(make_model(tmp_path / "m.onnx"), device="cpu", threads=1)
    logits, y, pages, s_logits, s_y, s_pages = recalibrate.corpus_dev_logits(
        clf, tmp_path / "corpus", tmp_path / "work", jobs=1, limit=80, engraver_limits={"lilypond": 15})
    assert seen["split"] == "dev" and seen["scan_splits"] == ("dev",) and seen["size"] == clf.input_size
    assert seen["limit"] == 80 and seen["engraver_limits"] == {"lilypond": 15}
    assert logits.shape == (5, len(LABELS)) and list(y) == [0, 0, 0, 1, 1]  # "nobody" is not a label
    assert pages == ["a#1", "a#2", "a#1", "b#1", "b#2"]
    np.testing.assert_allclose(logits[3:], clf.logits(rows["b"][0]), rtol=1e-5, atol=1e-5)
    assert s_logits.shape == (4, len(LABELS)) and list(s_y) == [2] * 4 and s_pages[0] == "c#1"
