"""The composer classifier: one ONNX Runtime session per process, batched inference.

Everything needed to use a model correctly is read from the ONNX file's metadata
(``metadata_props``), so a new model needs no code change:

    labels        JSON list of composer ids, in output order
    input_height  row image height fed to the model (pixels)
    input_width   row image width
    mean, std     input normalisation: x = (pixel / 255 - mean) / std
    temperature   calibrated softmax temperature (1.0 when absent)

Optional: ``name`` (shown to users), ``scan_temperature`` (the temperature for rows of scanned pages,
fitted on dev scans apart: a model is not equally sure of scans and engravings; ``temperature`` when
absent), ``abstain_threshold`` (confidence below which a
document is reported as uncertain), ``test_views`` (how many views of each row are classified and
their logits averaged, ``rowimage.row_views``; 1 when absent — the temperature and threshold were fitted
with that many), ``pool_sharpness`` (how much sharper than one row a page or document of many rows
is, ``report.pool``; 0 when absent). A second output named ``cam`` (N x C x h x w), when
present, gives class-activation maps.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .rowimage import MAX_VIEWS, row_views

# ONNX Runtime 1.2x+ on Linux and macOS sends usage telemetry to Microsoft (1DS) and keeps a device
# id and an event cache in ~/.cache/Microsoft. Scores are private and the program makes no network
# access: opt out before onnxruntime is first imported (the variable is read once, at import).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

REQUIRED_METADATA = ("labels", "input_height", "input_width", "mean", "std")
DEVICES = ("auto", "cpu", "cuda")
MODEL_ENV = "BYTEHOVEN_MODEL"
DEFAULT_MODEL_NAME = "bytehoven-resnet50.onnx"
INT8_MODEL_NAME = "bytehoven-resnet50.int8.onnx"


class ModelError(Exception):
    """A model that cannot be used; the message names the file and says why."""


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    sha256: str
    labels: tuple[str, ...]
    input_height: int
    input_width: int
    mean: float
    std: float
    temperature: float = 1.0
    abstain_threshold: float | None = None
    test_views: int = 1
    metadata: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    scan_temperature: float | None = None
    pool_sharpness: float = 0.0  # report.pool: 0 (the plain geometric mean) for models without the entry

    def temperature_for(self, scanned: bool) -> float:
        """The softmax temperature for rows of a scanned page or of a born-digital one."""
        if scanned and self.scan_temperature is not None:
            return self.scan_temperature
        return self.temperature

    def calibrated(self, logits: np.ndarray, scanned: bool = False) -> np.ndarray:
        """Probabilities from logits (N x composers) of rows of a scanned page or of a born-digital one."""
        if not len(logits):
            return logits  # nothing to normalise (a range of pages without rows may be 0 x 0)
        return softmax(logits.astype(np.float32) / self.temperature_for(scanned))


def models_dir() -> Path:
    """Where the shipped models live: ``models/`` beside the package, or inside a frozen bundle."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models"
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "models", here / "models", Path(sys.prefix) / "share" / "bytehoven" / "models"):
        if candidate.is_dir():
            return candidate
    return here.parent / "models"


def default_model_path(device: str = "auto") -> Path:
    """The model to use when none is named: $BYTEHOVEN_MODEL, else the shipped one
    (its int8 variant on CPU, when shipped)."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    d = models_dir()
    if device == "cpu" and (d / INT8_MODEL_NAME).is_file():
        return d / INT8_MODEL_NAME
    return d / DEFAULT_MODEL_NAME


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - packaging fault
        raise ModelError(f"ONNX Runtime is not installed ({exc}); reinstall Bytehoven") from None
    if os.environ.get("ORT_DISABLE_TELEMETRY") == "1" and hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()  # in case onnxruntime was imported before this module
    return ort


def read_model_info(path: Path, metadata: dict[str, str], sha256: str) -> ModelInfo:
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ModelError(f"{path}: not a Bytehoven model (metadata lacks {', '.join(missing)})")
    try:
        labels = json.loads(metadata["labels"])
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ValueError("labels must be a non-empty JSON list of strings")
        if len(set(labels)) != len(labels):
            raise ValueError("labels repeat")
        thr = metadata.get("abstain_threshold")
        scan_t = metadata.get("scan_temperature")
        return ModelInfo(
            path=path,
            name=metadata.get("name") or path.stem,
            sha256=sha256,
            labels=tuple(labels),
            input_height=int(metadata["input_height"]),
            input_width=int(metadata["input_width"]),
            mean=float(metadata["mean"]),
            std=float(metadata["std"]),
            temperature=float(metadata.get("temperature", "1.0")),
            abstain_threshold=float(thr) if thr not in (None, "") else None,
            test_views=_views(metadata.get("test_views", "1")),
            metadata=dict(metadata),
            scan_temperature=float(scan_t) if scan_t not in (None, "") else None,
            pool_sharpness=_sharpness(metadata.get("pool_sharpness", "0")),
        )
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: model metadata is invalid ({exc})") from None


def _views(value: int | str) -> int:
    views = int(value)
    if not 1 <= views <= MAX_VIEWS:
        raise ValueError(f"test_views must be 1..{MAX_VIEWS}")
    return views


def _sharpness(value: str) -> float:
    s = float(value)
    if not 0.0 <= s <= 1.0:
        raise ValueError("pool_sharpness must be within 0..1")
    return s


class Classifier:
    """A loaded model. Thread-safe for ``predict`` (ONNX Runtime sessions are).

    ``views``: test-time views per row, when not the model's own ``test_views`` (only to measure what
    views are worth: the model's calibration was fitted with its own number)."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, device: str = "auto",
                 threads: int | None = None, batch_size: int = 16, views: int | None = None):
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}")
        ort = _import_ort()
        path = Path(model_path) if model_path else default_model_path(device)
        if not path.is_file():
            raise ModelError(f"{path}: model file not found (name one with --model or {MODEL_ENV})")
        self.batch_size = max(1, int(batch_size))
        self.requested_device = device
        self.notice: str | None = None

        available = ort.get_available_providers()
        want_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        if device == "cuda" and not want_cuda:
            self.notice = "CUDA was requested but this ONNX Runtime has no CUDA support; using the CPU"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads) if threads else (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # Keep ONNX Runtime's own warnings (e.g. a red line when CUDA libraries are missing)
        # out of the user's terminal; we report what happened ourselves.
        opts.log_severity_level = 4
        ort.set_default_logger_severity(4)
        self._path, self._opts = path, opts
        self._fallback_lock = threading.Lock()
        providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if want_cuda else ["CPUExecutionProvider"])
        try:
            with _quiet_stderr():
                self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:
            if want_cuda:
                # A broken GPU set-up must not stop the analysis: retry on the CPU.
                try:
                    self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                        providers=["CPUExecutionProvider"])
                except Exception as exc2:
                    raise ModelError(f"{path}: model cannot be loaded ({_first_line(exc2)})") from None
                self.notice = f"the GPU could not be used ({_first_line(exc)}); using the CPU"
            else:
                raise ModelError(f"{path}: model cannot be loaded ({_first_line(exc)})") from None
        used = self.session.get_providers()[0]
        self.device = "cuda" if used == "CUDAExecutionProvider" else "cpu"
        if device == "cuda" and self.device != "cuda" and self.notice is None:
            self.notice = "CUDA is not usable on this machine (drivers or CUDA/cuDNN libraries missing); using the CPU"
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = read_model_info(path, meta, file_sha256(path))
        self.views = _views(views) if views is not None else self.info.test_views
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one input, found {len(inputs)}")
        self._input = inputs[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self._logits = outputs[0]
        self._cam = "cam" if "cam" in outputs else None
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != len(self.info.labels):
            raise ModelError(f"{path}: the model has {shape[1]} outputs but {len(self.info.labels)} labels")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of a row image."""
        return self.info.input_height, self.info.input_width

    @property
    def has_cam(self) -> bool:
        return self._cam is not None

    def _prepare(self, rows: np.ndarray) -> np.ndarray:
        x = rows.astype(np.float32) * (1.0 / 255.0)
        x = (x - self.info.mean) / self.info.std
        return x[:, None, :, :]

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """Raw logits for uint8 rows (N x H x W), in batches of ``batch_size`` images; with test-time
        views, the mean of each row's views' logits."""
        if rows.ndim != 3 or rows.shape[1:] != self.input_size:
            raise ValueError(f"rows must be N x {self.input_size[0]} x {self.input_size[1]}, got {rows.shape}")
        images = row_views(rows, self.views)
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = self._prepare(images[i: i + self.batch_size])
            out.append(self._run([self._logits], {self._input: batch})[0])
        if not out:
            return np.zeros((0, len(self.labels)), np.float32)
        res = np.concatenate(out).astype(np.float32)
        if res.shape[1] != len(self.labels):
            raise ModelError(f"{self.info.path}: the model gives {res.shape[1]} scores but has "
                             f"{len(self.labels)} labels")
        return res.reshape(len(rows), self.views, -1).mean(axis=1)

    def _run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        session = self.session
        try:
            return session.run(outputs, feeds)
        except Exception as exc:
            if self.device != "cuda":
                raise
            # A GPU that fails once running (a cuDNN that does not match, out of GPU memory, a
            # driver reset) must not end the analysis: finish on the CPU, and say so.
            with self._fallback_lock:
                if self.session is session:
                    try:
                        self.session = _import_ort().InferenceSession(str(self._path), sess_options=self._opts,
                                                                      providers=["CPUExecutionProvider"])
                    except Exception as exc2:
                        raise ModelError(f"{self._path}: model cannot be loaded ({_first_line(exc2)})") from None
                    self.device = "cpu"
                    self.notice = f"the GPU failed during analysis ({_first_line(exc)}); using the CPU"
            return self.session.run(outputs, feeds)

    def predict(self, rows: np.ndarray, scanned: bool = False) -> np.ndarray:
        """Calibrated probabilities (N x composers) for uint8 rows (N x H x W) of one kind of page."""
        return self.info.calibrated(self.logits(rows), scanned)

    def explain(self, row: np.ndarray, scanned: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities for one row and, if the model exports it, the class-activation map of its
        top composer, resized to the row image and scaled to 0..1."""
        if self._cam is None:
            return self.predict(row[None], scanned)[0], None
        logits, cam = self._run([self._logits, self._cam], {self._input: self._prepare(row[None])})
        probs = self.info.calibrated(logits, scanned)[0]
        m = cam[0, int(np.argmax(probs))].astype(np.float32)
        m = np.maximum(m, 0)
        if m.max() > 0:
            m /= m.max()
        import cv2

        return probs, cv2.resize(m, (row.shape[1], row.shape[0]), interpolation=cv2.INTER_LINEAR)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


_cache: dict[tuple, Classifier] = {}
_cache_lock = threading.Lock()


def get_classifier(model_path: str | os.PathLike[str] | None = None, device: str = "auto",
                   threads: int | None = None, batch_size: int = 16) -> Classifier:
    """The process-wide session for this model and device, created on first use."""
    path = Path(model_path) if model_path else default_model_path(device)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(path.resolve()) if stamp is not None else str(path), stamp, device, threads)
    with _cache_lock:
        clf = _cache.get(key)
        if clf is None:
            clf = Classifier(path, device=device, threads=threads, batch_size=batch_size)
            _cache[key] = clf
        clf.batch_size = max(1, int(batch_size))
        return clf


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:240]


class _quiet_stderr:
    """Silence the C++ layer's direct writes to fd 2 while a session is created."""

    def __enter__(self) -> None:
        self._saved = None
        if os.environ.get("BYTEHOVEN_DEBUG"):
            return
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
