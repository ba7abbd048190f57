"""Static int8 QDQ quantisation of the released model for CPU inference.

Per-channel weights, activations calibrated on real row images (dev rows of the dataset).
The app prefers the int8 file on CPU only when it is shipped, and it is shipped only when its
accuracy is within half a point of the float model (checked by ``bytehoven evaluate``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..classifier import Classifier
from .augment import center
from .train import load_data


class _RowReader:
    """Feeds calibration batches to ONNX Runtime's quantiser."""

    def __init__(self, batches: list[np.ndarray], input_name: str):
        self._it = iter(batches)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:  # pragma: no cover - not used by the static quantiser
        pass


def quantize(model: Path, data_dir: Path, out: Path, rows: int = 512, batch: int = 32) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    clf = Classifier(model, device="cpu")
    h, w = clf.input_size
    data = load_data(data_dir, in_memory=False)
    dev = np.array([i for i, m in enumerate(data.meta) if m["split"] == "dev"])
    pick = np.random.default_rng(0).choice(dev, min(rows, len(dev)), replace=False)
    x = np.stack([center(data.rows[i], h, w) for i in pick])
    batches = [clf._prepare(x[i: i + batch]) for i in range(0, len(x), batch)]
    reader = type("Reader", (_RowReader, CalibrationDataReader), {})(batches, clf.session.get_inputs()[0].name)

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
    t = time.perf_counter()
    quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    pre.unlink(missing_ok=True)
    # Carry the metadata over (labels, normalisation, temperature …) and say what this file is.
    import onnx

    src, dst = onnx.load(str(model)), onnx.load(str(out))
    del dst.metadata_props[:]
    for p in src.metadata_props:
        q = dst.metadata_props.add()
        q.key, q.value = p.key, p.value
    q = dst.metadata_props.add()
    q.key, q.value = "quantization", json.dumps({"format": "QDQ int8 static, per-channel weights",
                                                 "calibration_rows": int(len(x))})
    onnx.save(dst, str(out))
    return {"calibration_rows": int(len(x)), "seconds": round(time.perf_counter() - t, 1)}

