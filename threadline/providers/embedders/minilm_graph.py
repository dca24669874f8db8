"""The bundled model's graph, rewritten once per machine so that its matrix products run in
int8, and kept on disk.

The bundled file stores its weights as int8 only to be small: each is cast back to float when
the graph loads, so every matrix product runs in float32 and the int8 buys no speed. It also
guards each attention softmax with IsNaN/Where, for rows whose every position is masked; the
model never sees such a row (every window it is given starts with [CLS], which is never masked),
so the guards only cost time.

onnxruntime's own quantization tools do the rewrite, rather than code of ours:
`quant_pre_process` runs the graph optimiser at its basic level (which folds the casts into
float weights) and infers shapes; the guards are then dropped; `quantize_dynamic` stores the
weights of the matrix products as int8, one scale per output channel, and quantizes their
inputs as the model runs (all but a few, see `FLOAT_NARROWING_PRODUCTS`). The vectors stay
close enough to the bundled graph's to be compared with them, so they keep its model id.

The rewrite takes seconds, so its result is cached, under `$XDG_CACHE_HOME/threadline/`
(`~/.cache/threadline/` by default), in a file named after the source's sha256, the
onnxruntime version and the recipe, written to a temporary name and renamed, so that a reader
never sees half a file. A cached file that no longer loads is rebuilt; when the cache cannot
be written, the rewrite is made in a temporary directory and loaded from memory; when the
rewrite itself fails, the bundled graph runs as it is (slower; the vectors are those the
rewrite stays close to).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime as ort  # type: ignore[import-untyped]

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

# Names the rewrite below; change it when the rewrite changes, so cached files of the old
# one are not used.
RECIPE = "q8-2"
# The feed-forward output projections of this many layers, from the first, keep float
# weights and inputs. Their input, a GELU's output, has a long tail of large values, so one
# scale for a whole window quantizes it worst, and an error in an early layer travels through
# every later one: quantizing them all moved the vectors measurably further from the bundled
# graph's, while keeping the first ones in float cost little time.
FLOAT_NARROWING_PRODUCTS = 3


def open_session(source: Path, name: str, options: ort.SessionOptions) -> ort.InferenceSession:
    """An inference session on the rewritten `source` (the model `name`), rewriting it only
    when no cached copy loads."""
    cached = cache_file(source, name)
    if cached is not None and cached.is_file():
        try:
            return _session(cached, options)
        except Exception as failed:  # onnxruntime's errors share no base but Exception
            log.warning(
                "the cached embedding model %s does not load (%s); rebuilding", cached, failed
            )
    log.info("rewriting the embedding model %s for int8 matrix products (once)", source)
    try:
        work = _work_dir_in(cached.parent) if cached is not None else None
        if cached is not None and work is not None:
            try:
                os.replace(rewrite(source, work), cached)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            return _session(cached, options)
        with tempfile.TemporaryDirectory(prefix="threadline-rewrite-") as elsewhere:
            model = rewrite(source, Path(elsewhere)).read_bytes()
        return _session(model, options)
    except Exception:
        log.warning(
            "the embedding model could not be rewritten; running it as shipped", exc_info=True
        )
        return _session(source, options)


def cache_file(source: Path, name: str) -> Path | None:
    """Where the rewrite of `source` is kept; None when there is no home to keep it in."""
    root = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(root):  # the XDG rule: a relative value is ignored
        try:
            root = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory
            return None
    digest = _sha256(source)
    return Path(root) / "threadline" / f"{name}-{digest}-ort{ort.__version__}-{RECIPE}.onnx"


def rewrite(source: Path, work: Path) -> Path:
    """`source` rewritten (see the module's docstring) into a file in the directory `work`."""
    # Imported here, not at the top: they take a while to import, and are needed once.
    import onnx
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quant_pre_process,
        quantize_dynamic,
    )

    optimised, unguarded, quantized = work / "basic.onnx", work / "unguarded.onnx", work / "q.onnx"
    # Symbolic shape inference cannot follow this graph (a PyTorch export) and adds nothing
    # the quantizer needs: only the weights' shapes matter, and they are constants.
    with _quiet():
        quant_pre_process(source, optimised, skip_symbolic_shape=True)
        model = onnx.load(optimised)
        drop_softmax_nan_guards(model)
        onnx.save(model, unguarded)
        quantize_dynamic(
            unguarded,
            quantized,
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=first_narrowing_products(model, FLOAT_NARROWING_PRODUCTS),
        )
    return quantized


def first_narrowing_products(model: onnx.ModelProto, count: int) -> list[str]:
    """The names of the first `count` matrix products, in graph order, whose constant
    weight has more rows than columns: in a BERT layer, only the feed-forward block's
    output projection narrows (back to the hidden size)."""
    shapes = {weight.name: tuple(weight.dims) for weight in model.graph.initializer}
    found: list[str] = []
    for node in model.graph.node:
        shape = shapes.get(node.input[1], ()) if node.op_type == "MatMul" else ()
        if len(shape) == 2 and shape[0] > shape[1] and node.name:
            found.append(node.name)
    return found[:count]


def drop_softmax_nan_guards(model: onnx.ModelProto) -> int:
    """Removes every `Where(IsNaN(s), c, s)` over a Softmax's output `s` (where the IsNaN
    feeds nothing else), reading `s` directly instead; returns how many were removed."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    readers = Counter(name for node in graph.node for name in node.input)
    readers.update(output.name for output in graph.output)
    replaced: dict[str, str] = {}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        test = producers.get(node.input[0])
        probabilities = producers.get(node.input[2])
        if (
            test is not None
            and test.op_type == "IsNaN"
            and test.input[0] == node.input[2]
            and readers[test.output[0]] == 1
            and probabilities is not None
            and probabilities.op_type == "Softmax"
            and node.output[0] not in {output.name for output in graph.output}
        ):
            replaced[node.output[0]] = node.input[2]
            dropped.update((id(node), id(test)))
    if not replaced:
        return 0
    import onnx

    survivors = [node for node in graph.node if id(node) not in dropped]
    for node in survivors:
        for index, name in enumerate(node.input):
            node.input[index] = replaced.get(name, name)
    del graph.node[:]
    graph.node.extend(survivors)
    onnx.checker.check_model(model)
    return len(replaced)


def _session(model: Path | bytes, options: ort.SessionOptions) -> ort.InferenceSession:
    where = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(where, options, providers=["CPUExecutionProvider"])


def _work_dir_in(folder: Path) -> Path | None:
    """A new directory inside `folder` (so that a file made in it can be renamed into
    `folder`), or None when `folder` cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=folder, prefix=".rewrite-"))
    except OSError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _quiet() -> Iterator[None]:
    """The quantization tools report each step at INFO, some to their own loggers and some
    through `logging.info` itself, which also configures the root logger when it has no
    handler yet: that is noise in the service's log, and a change to its settings. A
    placeholder handler keeps the root logger as configured, and below ERROR what the tools
    report is dropped."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    own = logging.getLogger("onnxruntime.quantization")
    level = own.level
    root.addHandler(placeholder)
    root.addFilter(_from_the_tools)
    own.setLevel(logging.ERROR)
    try:
        yield
    finally:
        own.setLevel(level)
        root.removeFilter(_from_the_tools)
        root.removeHandler(placeholder)


_TOOLS = str(Path(ort.__file__).parent / "quantization")


def _from_the_tools(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or not record.pathname.startswith(_TOOLS)
