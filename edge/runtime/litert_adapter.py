"""LiteRT adapter: one ``.tflite`` file with one signature per method.

Uses ``ai_edge_litert.interpreter.Interpreter``; falls back to ``tflite_runtime`` only where
ai-edge-litert is missing (tflite-runtime 2.14, its last release, cannot load models under
numpy 2 and gave wrong int8 results, see docs/TOOLCHAIN_NOTES.md "Pitfalls"). An interpreter is not thread-safe:
calls are serialised by the classifier (not re-entrant).
"""
from __future__ import annotations

import re
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


def _argument_order(name: str) -> tuple:
    """Signature inputs in argument order: ``args_2`` before ``args_10`` (litert-torch names them
    after the exported function's positional arguments)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


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
            # The export records the signature's input names in argument order; older files had one input.
            names = artifact["methods"][method].get("inputs") or sorted(runner.get_input_details(), key=_argument_order)
            self._runners[method] = (runner, list(names))

    def input_shape(self, method: str) -> list:
        """Declared shape of a method's first input signature tensor."""
        runner, keys = self._runners[method]
        return [int(d) for d in runner.get_input_details()[keys[0]]["shape"]]

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        runner, keys = self._runners[method]
        if len(inputs) != len(keys):
            raise ValueError(f"signature {method!r} takes {len(keys)} input(s) ({', '.join(keys)}), got {len(inputs)}")
        outputs = runner(**dict(zip(keys, inputs)))
        return np.array(next(iter(outputs.values())))  # copy: the interpreter reuses its tensors

    def close(self) -> None:
        self._runners.clear()
        self._interpreters.clear()
