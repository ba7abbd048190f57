"""Checkpoint → calibrated ONNX model with everything the app needs in its metadata."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from .calibration import calibrate_dev
from .model import CamExport, ResNet50
from .train import RowData, evaluate_rows, load_data


def load_checkpoint(path: Path) -> tuple[ResNet50, dict]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = ResNet50(len(state["labels"]))
    net.load_state_dict(state["model"])
    net.eval()
    return net, state


def lineage(checkpoint: Path, state: dict | None = None) -> list[dict]:
    """The training stages behind a checkpoint, first stage first: each stage's run folder, the
    steps it trained and its batch, followed through the runs' ``init`` (see ``train --init``).
    ``state``: the checkpoint already loaded (checkpoints are large; not read twice)."""
    stages: list[dict] = []
    seen: set[Path] = set()
    path: Path | None = checkpoint
    while path is not None and path.exists() and path.resolve() not in seen:
        seen.add(path.resolve())
        if state is None:
            state = torch.load(path, map_location="cpu", weights_only=False)
        config_file = path.parent / "config.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        stages.append({"run": str(path.parent), "steps": int(state["step"]), "batch": int(config.get("batch", 0)),
                       "scans": bool(config.get("include_scans", True))})
        path = Path(config["init"]) if config.get("init") else None
        state = None
        if path is not None and path.suffix == ".onnx":
            # A stage that started from a released model: its own stages are in its metadata.
            from .onnx_weights import onnx_metadata

            stages.extend(reversed(json.loads(onnx_metadata(path).get("training_stages", "[]"))))
            break
    return stages[::-1]


def dev_logits(net: ResNet50, data: RowData, labels: list[str], views: int = 1, scans: bool = False
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits, labels and page keys of the dev rows that calibrate (``RowData.dev_rows``), at the
    data's input size with ``views`` test-time views per row."""
    idx, y = data.dev_rows(labels, scans)
    if not len(idx):
        return np.zeros((0, len(labels)), np.float32), y, []
    _, logits = evaluate_rows(net, data, idx, labels, views=views)
    return logits, y, data.page_keys(idx)


def export(checkpoint: Path, out: Path, data_dir: Path | None, corpus_sha256: str = "", name: str | None = None,
           command: str | None = None, views: int = 1) -> dict:
    """``views``: test-time views per row the app will classify and pool (metadata ``test_views``);
    the temperature and the abstain threshold are fitted on dev with that many."""
    net, state = load_checkpoint(checkpoint)
    labels = state["labels"]
    meta = {
        "name": name or out.stem,
        "labels": json.dumps(labels),
        "input_height": str(state["height"]),
        "input_width": str(state["width"]),
        "mean": str(state["mean"]),
        "std": str(state["std"]),
        "architecture": "ResNet50 (bottleneck [3,4,6,3], 1 grey channel, from scratch)",
        "corpus_manifest_sha256": corpus_sha256,
        "test_views": str(views),
        "training_command": command or " ".join(shlex.quote(a) for a in sys.argv),
    }
    stages = lineage(checkpoint, state)
    meta["training_steps"] = str(sum(st["steps"] for st in stages))
    meta["training_samples"] = str(sum(st["steps"] * (st["batch"] or 32) for st in stages))
    meta["training_stages"] = json.dumps(stages)
    report: dict = {}
    if data_dir is not None:
        data = load_data(data_dir, in_memory=False).at_size((state["height"], state["width"]))
        meta_cal, report = calibrate_dev(*dev_logits(net, data, labels, views),
                                         *dev_logits(net, data, labels, views, scans=True))
        meta.update(meta_cal)
        report["test_views"] = views
    x = torch.zeros(2, 1, state["height"], state["width"])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(CamExport(net), (x,), str(out), input_names=["input"], output_names=["logits", "cam"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}, "cam": {0: "N"}}, opset_version=17,
                      dynamo=False)
    import onnx

    model = onnx.load(str(out))
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(out))
    return report
