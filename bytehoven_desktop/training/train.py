"""Train the ResNet50 on a row dataset, in resumable chunks.

``bytehoven train --data data/rows --run runs/r1 --samples 200000`` trains for that many
row images (class-balanced sampling with replacement), checkpointing to ``run/last.pt``
every few minutes; running the same command again continues where it stopped. The best
checkpoint by dev accuracy is kept as ``run/best.pt``. A log goes to ``run/train.log``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .augment import augment, center, cutmix_rows
from .model import ResNet50
from .precision import autocast, resolve

MEAN, STD = 0.8, 0.3  # grey rows are mostly white paper
TIMED_STEPS = 20  # with a time budget: steps skipped, then steps timed, to set the schedule's length


@dataclass
class RowData:
    rows: np.ndarray  # N x sh x sw uint8 (stored crops)
    meta: list[dict[str, str]]
    height: int
    width: int

    def at_size(self, size: tuple[int, int] | None) -> "RowData":
        """The same rows fed to a model of another input size (height, width): the stored crops are
        resized to it (``augment``/``center``), so one dataset serves several input sizes."""
        if size is None or tuple(size) == (self.height, self.width):
            return self
        return replace(self, height=int(size[0]), width=int(size[1]))

    def where(self, **eq: str) -> np.ndarray:
        return np.array([i for i, m in enumerate(self.meta) if all(m[k] == v for k, v in eq.items())], np.int64)

    def dev_rows(self, labels: list[str], scans: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Indices and label numbers of the dev rows that calibrate a model: those of born-digital pages
        of engraved and symbolic sources, or (``scans``) those of real scans; composers outside
        ``labels`` left out. Rows given the synthetic scan look are neither: the engraved temperature
        is for pages the app takes as born-digital, which such a page would not be."""
        idx = np.array([i for i, m in enumerate(self.meta) if m["split"] == "dev"
                        and (m["kind"] == "scan") == scans and m["composer"] in labels
                        and (scans or m.get("scan_look", "0") != "1")], np.int64)
        return idx, np.array([labels.index(self.meta[i]["composer"]) for i in idx], np.int64)

    def document_keys(self, idx: np.ndarray) -> list[str]:
        """One key per engraved document of rows ``idx``: a source in one engraver and variant (the three
        engravings of a score are three documents, as they are three PDFs to a user)."""
        return [f'{m["source"]}#{m.get("engraver", "")}#{m["variant"]}' for m in (self.meta[i] for i in idx)]

    def page_keys(self, idx: np.ndarray) -> list[str]:
        return [f'{d}#{self.meta[i]["page"]}' for d, i in zip(self.document_keys(idx), idx)]


def load_data(data: Path, in_memory: bool = True) -> RowData:
    info = json.loads((data / "dataset.json").read_text())
    rows = np.load(data / "rows.npy", mmap_mode=None if in_memory else "r")
    with (data / "rows.csv").open(newline="") as fh:
        meta = list(csv.DictReader(fh))
    return RowData(rows, meta, info["height"], info["width"])


def transposed_rows(meta: list[dict[str, str]]) -> np.ndarray:
    """Which rows come from a transposed engraving (recomputed from source and variant)."""
    from .dataset import variant_style

    styles: dict[tuple[str, str], bool] = {}
    out = np.zeros(len(meta), bool)
    for i, m in enumerate(meta):
        if m["kind"] != "symbolic":
            continue
        key = (m["source"], m["variant"])
        if key not in styles:
            styles[key] = variant_style(m["source"], int(m["variant"])).transpose is not None
        out[i] = styles[key]
    return out


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(batch.astype(np.float32) / 255.0)
    return ((x - MEAN) / STD)[:, None].contiguous(memory_format=torch.channels_last)


def evaluate_rows(net: ResNet50, data: RowData, idx: np.ndarray, labels: list[str], batch: int = 128,
                  views: int = 1) -> tuple[float, np.ndarray]:
    """Top-1 accuracy and logits of rows ``idx`` (centre crops; with ``views``, the mean logits of each
    row's test-time views, as the app's ``Classifier`` pools them)."""
    from ..rowimage import row_views

    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            b = np.stack([center(data.rows[j], data.height, data.width) for j in idx[i: i + batch]])
            z = net(to_tensor(row_views(b, views))).float().numpy()
            out.append(z.reshape(len(b), views, -1).mean(axis=1))
    net.train()
    logits = np.concatenate(out) if out else np.zeros((0, len(labels)), np.float32)
    y = np.array([labels.index(data.meta[j]["composer"]) for j in idx])
    acc = float((logits.argmax(1) == y).mean()) if len(y) else 0.0
    return acc, logits


def train(data_dir: Path, run: Path, samples: int, batch: int = 32, lr: float = 1e-3, threads: int = 2,
          checkpoint_minutes: float = 10.0, dev_rows: int = 3000, include_scans: bool = True,
          seed: int = 0, stop_after_minutes: float | None = None, init: Path | None = None,
          warmup: int = 500, transposed: bool = True, leave_out: Sequence[str] = (),
          precision: str = "auto", input_size: tuple[int, int] | None = None,
          minutes: float | None = None, cutmix: float = 0.0, compiled: bool = False) -> Path:
    """Train (or continue) a run; ``init`` starts a new run from another run's weights.

    A second stage with its own learning-rate schedule is how a model grows in chunks: the
    first run's cosine has already decayed, and stretching its schedule afterwards would jump
    the learning rate in the middle of a run. ``transposed=False`` leaves out the rows of
    transposed engravings (the transposition ablation); ``leave_out`` the rows of these engravers
    (``rows.csv`` column ``engraver``), from training and from dev, to measure how far a model carries
    to an engraver it never saw. ``init`` may also be a released ONNX model (``onnx_weights``): the
    lineage goes on from the shipped weights on a machine that has no checkpoints. ``precision``: bf16
    autocast was 1.8x fp32 per step on an AVX512-BF16 CPU and 15x slower on an AVX2-only one
    (``bench/bench_train_step.py``); ``auto`` takes bf16 only where the CPU has it natively.
    ``input_size``: (height, width) of the model input when it is not the dataset's own; a ResNet ends
    in global pooling, so ``init`` may come from a model of another input size (fine-tuned at the new one).
    ``minutes``: a budget of training-step time instead of ``samples`` (pilots at equal CPU time): the
    schedule's length is set from the throughput of the first steps and kept in the checkpoint (dev
    checks are not counted); ``samples`` stays an upper bound. ``cutmix``: the share of rows that get
    a band of another row pasted in (``augment.cutmix_rows``), a regulariser. ``compiled``: the training
    forward runs through ``torch.compile`` (the weights, dev checks and checkpoints stay those of the plain
    network, which shares its parameters), worth it where it is faster (AMX) and the run is long.
    """
    run.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    precision = resolve(precision)
    log = (run / "train.log").open("a")

    def say(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    data = load_data(data_dir).at_size(input_size)
    labels = sorted({m["composer"] for m in data.meta})
    kinds = {"symbolic", "engraved"} | ({"scan"} if include_scans else set())
    train_idx = np.array([i for i, m in enumerate(data.meta) if m["split"] == "train" and m["kind"] in kinds])
    if not transposed:
        train_idx = train_idx[~transposed_rows(data.meta)[train_idx]]
    if leave_out:
        train_idx = np.array([i for i in train_idx if data.meta[i].get("engraver") not in leave_out], np.int64)
    dev_all = np.array([i for i, m in enumerate(data.meta) if m["split"] == "dev" and m["kind"] != "scan"
                        and m.get("engraver") not in leave_out], np.int64)
    rng_dev = np.random.default_rng(1234)
    dev_idx = np.sort(rng_dev.choice(dev_all, min(dev_rows, len(dev_all)), replace=False)) if len(dev_all) else dev_all
    y_all = np.array([labels.index(m["composer"]) for m in data.meta])
    # Nearly balanced sampling: a composer is drawn with probability ~ rows**0.3, so the
    # small classes are seen often while the big ones' variety is still used.
    counts = np.bincount(y_all[train_idx], minlength=len(labels)).astype(np.float64)
    w = np.maximum(counts[y_all[train_idx]], 1) ** -0.7
    w /= w.sum()

    net = ResNet50(len(labels)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.05)
    total_steps = max(1, samples // batch)
    warm = min(warmup, total_steps // 10 + 1)
    timed = minutes is not None  # the length is not known until the first steps are timed

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        p = (step - warm) / max(1, total_steps - warm)
        return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))

    step, best = 0, -1.0
    ck = run / "last.pt"
    if ck.exists():
        state = torch.load(ck, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, best = state["step"], state["best"]
        if timed and state.get("total_steps"):
            total_steps, timed = int(state["total_steps"]), False
        if state.get("labels") != labels:
            raise SystemExit(f"{ck}: trained on other labels; use a new --run folder")
        if (state["height"], state["width"]) != (data.height, data.width):
            raise SystemExit(f"{ck}: trained at {state['height']}x{state['width']}, asked for "
                             f"{data.height}x{data.width}; use the same --input or a new --run folder")
        say(f"resumed at step {step}/{total_steps} (best dev {best:.4f})")
    else:
        if init is not None and init.suffix == ".onnx":
            from .onnx_weights import net_from_onnx

            stats_rng = np.random.default_rng(seed)
            stats_rows = np.stack([augment(data.rows[j], data.height, data.width, stats_rng)
                                   for j in stats_rng.choice(train_idx, 256, p=w)])
            released, meta = net_from_onnx(init, to_tensor(stats_rows))
            if json.loads(meta["labels"]) != labels:
                raise SystemExit(f"{init}: trained on other labels")
            net.load_state_dict(released.state_dict())
            resized = (int(meta["input_height"]), int(meta["input_width"])) != (data.height, data.width)
            say(f"initialised from released model {init} ({meta.get('name')}, {meta.get('training_steps')} steps)"
                + (f", its input {meta['input_height']}x{meta['input_width']} → {data.height}x{data.width}"
                   if resized else ""))
        elif init is not None:
            state = torch.load(init, map_location="cpu", weights_only=False)
            if state.get("labels") != labels:
                raise SystemExit(f"{init}: trained on other labels")
            net.load_state_dict(state["model"])
            say(f"initialised from {init} (its step {state['step']}, dev {state['best']:.4f})")
        say(f"start: {len(train_idx)} train rows, {len(dev_idx)} dev rows, {len(labels)} composers, "
            f"counts {dict(zip(labels, counts.astype(int).tolist()))}, {total_steps} steps of {batch}, {precision}")
    (run / "config.json").write_text(json.dumps({
        "data": str(data_dir), "samples": samples, "batch": batch, "lr": lr, "labels": labels,
        "height": data.height, "width": data.width, "mean": MEAN, "std": STD, "seed": seed,
        "include_scans": include_scans, "init": str(init) if init else None, "warmup": warmup,
        "transposed": transposed, "leave_out_engravers": list(leave_out), "precision": precision,
        "minutes": minutes, "cutmix": cutmix, "compiled": compiled}, indent=1))

    def save(path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                    "labels": labels, "height": data.height, "width": data.width, "mean": MEAN, "std": STD,
                    "total_steps": None if timed else total_steps}, tmp)
        os.replace(tmp, path)

    rng = np.random.default_rng(seed + step)
    net.train()
    # Only the training step is compiled: dev checks in eval mode and state_dicts use ``net`` itself.
    step_net = torch.compile(net) if compiled else net
    t_start = time.time()
    t_ck = time.time()
    run_loss, run_acc, seen = 0.0, 0.0, 0
    while step < total_steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pick = rng.choice(train_idx, batch, p=w)
        xb = np.stack([augment(data.rows[j], data.height, data.width, rng) for j in pick])
        yb = torch.from_numpy(y_all[pick])
        target: torch.Tensor = yb
        if cutmix > 0:
            xb, soft = cutmix_rows(xb, y_all[pick], len(labels), rng, p=cutmix)
            target = torch.from_numpy(soft)
        with autocast(precision):
            logits = step_net(to_tensor(xb))
            loss = F.cross_entropy(logits.float(), target, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_loss += float(loss.detach())
        run_acc += float((logits.argmax(1) == yb).float().mean())
        seen += 1
        if timed and seen == TIMED_STEPS:
            # The first steps (allocations, caches) are slower; time the ones after them.
            t_timed = time.time()
        if timed and seen == 2 * TIMED_STEPS:
            per_step = (time.time() - t_timed) / TIMED_STEPS
            total_steps = min(total_steps, step + int((minutes * 60 - (time.time() - t_start)) / per_step))
            total_steps, timed = max(total_steps, step + 1), False
            say(f"time budget {minutes:g} min at {per_step:.2f} s/step: {total_steps} steps of {batch}")
        if step % 50 == 0:
            rate = seen * batch / max(1e-9, time.time() - t_start)
            say(f"step {step}/{total_steps} loss {run_loss / 50:.3f} acc {run_acc / 50:.3f} lr {lr_at(step):.2e} "
                f"{rate:.1f} img/s")
            run_loss, run_acc = 0.0, 0.0
        done = step >= total_steps
        out_of_time = stop_after_minutes is not None and (time.time() - t_start) / 60 > stop_after_minutes
        if done or out_of_time or (time.time() - t_ck) / 60 > checkpoint_minutes:
            acc, _ = evaluate_rows(net, data, dev_idx, labels)
            if acc > best:
                best = acc
                save(run / "best.pt")
            save(ck)
            say(f"checkpoint step {step}: dev row accuracy {acc:.4f} (best {best:.4f})")
            t_ck = time.time()
            if out_of_time:
                say("stopping for now (time budget); run the same command to continue")
                break
    return run / "best.pt"
