"""LiteRT adapter: one ``.tflite`` file with one signature per method.

Uses ``ai_edge_litert.interpreter.Interpreter``; falls back to ``tflite_runtime`` only where
ai-edge-litert is missing (tflite-runtime 2.14, its last release, cannot load models under
numpy 2 and gave wrong int8 results, see TOOLCHAIN.md). An interpreter is not thread-safe:
calls are serialised by the classifier (not re-entrant).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.runtime.base import method_entry


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"


class LiteRTAdapter:
    """Run a LiteRT (TFLite) artifact through its signature runners.

    Args:
        folder: the artifact folder.
        artifact: its manifest entry (``format == "litert"``).
        threads: interpreter threads (None = the engine's default).
    """

    name = "litert"
    reentrant = False

    def __init__(self, folder: Path, artifact: dict, threads: int | None = None):
        interpreter_cls, self.engine = _interpreter_class()
        mod = __import__(self.engine)
        self.version = f"{self.engine} {getattr(mod, '__version__', 'unknown')}"
        self._interpreters: dict[Path, object] = {}
        self._runners: dict[str, tuple[object, str]] = {}
        for method in artifact["methods"]:
            path, entry = method_entry(folder, artifact, method)
            if path not in self._interpreters:
                self._interpreters[path] = interpreter_cls(model_path=str(path), num_threads=threads)
            interp = self._interpreters[path]
            if entry not in interp.get_signature_list():
                from echoweave.edge.manifest import ManifestError

                raise ManifestError(f"{path}: no signature {entry!r} (has {', '.join(interp.get_signature_list())})")
            runner = interp.get_signature_runner(entry)
            self._runners[method] = (runner, next(iter(runner.get_input_details())))

    def input_shape(self, method: str) -> list:
        """Declared shape of a method's input signature tensor."""
        runner, key = self._runners[method]
        return [int(d) for d in runner.get_input_details()[key]["shape"]]

    def run(self, method: str, x: np.ndarray) -> np.ndarray:
        runner, key = self._runners[method]
        outputs = runner(**{key: x})
        return np.array(next(iter(outputs.values())))  # copy: the interpreter reuses its tensors

    def close(self) -> None:
        self._runners.clear()
        self._interpreters.clear()
