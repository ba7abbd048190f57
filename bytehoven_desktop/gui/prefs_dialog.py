"""Edit → Preferences: device, batch size, confidence threshold, model file and results library."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ..classifier import MODEL_ENV, default_model_path
from ..library import default_library_path
from .settings import Preferences

DEVICE_CHOICES = (("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"))


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(520)
        form = QFormLayout()

        self.device = QComboBox()
        for key, text in DEVICE_CHOICES:
            self.device.addItem(text, key)
        self.device.setCurrentIndex(max(0, self.device.findData(prefs.device)))
        form.addRow("Run the model on:", self.device)

        self.batch = QSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setValue(prefs.batch_size)
        self.batch.setToolTip("Rows classified together. Larger batches are faster on a GPU and use more memory.")
        form.addRow("Batch size (rows):", self.batch)

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        # The lowest value means "the model's own calibrated threshold".
        self.threshold.setSpecialValueText("Model default")
        self.threshold.setValue(0.0 if prefs.threshold is None else max(0.01, prefs.threshold))
        self.threshold.setToolTip("Below this pooled confidence a page or document is reported as uncertain "
                                  "instead of naming a composer.")
        form.addRow("Confidence threshold:", self.threshold)

        model_row = QHBoxLayout()
        self.model = QLineEdit(prefs.model_path)
        self.model.setPlaceholderText(str(default_model_path(prefs.device)))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse)
        form.addRow("Model file:", model_row)
        hint = QLabel(f"Leave empty to use the shipped model (or ${MODEL_ENV} when set).")
        hint.setWordWrap(True)
        form.addRow("", hint)

        library_row = QHBoxLayout()
        self.library = QLineEdit(prefs.library_path)
        self.library.setPlaceholderText(str(default_library_path()))
        self.library.setToolTip("Every analysis is kept here, so a score opened again is shown at once.")
        browse_library = QPushButton("Browse…")
        browse_library.clicked.connect(self._browse_library)
        library_row.addWidget(self.library, 1)
        library_row.addWidget(browse_library)
        form.addRow("Results library:", library_row)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        start = self.model.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", start, "ONNX models (*.onnx);;All files (*)")
        if path:
            self.model.setText(path)

    def _browse_library(self) -> None:
        start = self.library.text() or str(default_library_path())
        path, _ = QFileDialog.getSaveFileName(self, "Results library", start,
                                              "Bytehoven library (*.sqlite3);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.library.setText(path)

    def preferences(self) -> Preferences:
        t = self.threshold.value()
        return Preferences(device=str(self.device.currentData()), batch_size=self.batch.value(),
                           threshold=None if t <= 0.0 else t, model_path=self.model.text().strip(),
                           library_path=self.library.text().strip())
