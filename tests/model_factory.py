"""Tiny ONNX models with Bytehoven metadata, built with onnx.helper for the tests.

They have the shape of the real thing (grey rows in, one logit per composer out, a ``cam``
output) and fixed random weights, so tests are deterministic without shipping a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ("bach", "beethoven", "chopin", "mozart")


def make_model(path: Path, labels: Sequence[str] = LABELS, height: int = 32, width: int = 192,
               metadata: dict[str, str] | None = None, seed: int = 0, with_cam: bool = True,
               n_outputs: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    c = n_outputs or len(labels)
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (c, 4, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["f0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["f0"], ["feat"]),
        helper.make_node("Conv", ["feat", "w2"], ["cam"]),
        helper.make_node("GlobalAveragePool", ["cam"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["logits"], axis=1),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", c])]
    if with_cam:
        outputs.append(helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", c, height, width]))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, height, width])],
        outputs,
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"labels": json.dumps(list(labels)), "input_height": str(height), "input_width": str(width),
            "mean": "0.5", "std": "0.25", "temperature": "1.0", "name": "tiny-test-model"}
    if metadata is not None:
        meta = {k: v for k, v in {**meta, **metadata}.items() if v is not None}
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path
