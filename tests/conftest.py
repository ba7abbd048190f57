import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The results library lives in the platform's data folder: a test that starts the program must never
# write into the user's own library.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="bytehoven-test-data-")
sys.path.insert(0, str(Path(__file__).parent))

from model_factory import make_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx")
