"""Core ML adapter: a multifunction ``.mlpackage`` (one function per method). macOS only.

coremltools can convert and inspect models on Linux, but ``predict`` needs the Core ML
framework of macOS; `echoweave.edge.runtime.base.require_runtime` refuses the runtime elsewhere
with a clear message, and this class checks again in case it is constructed directly.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from echoweave.edge.runtime.base import RuntimeNotAvailable, method_entry


class CoreMLAdapter:
    """Run a Core ML artifact with coremltools (macOS).

    Args:
        folder: the artifact folder.
        artifact: its manifest entry (``format == "coreml"``).
        threads: ignored (Core ML schedules its own compute units).
    """

    name = "coreml"
    reentrant = False

    def __init__(self, folder: Path, artifact: dict, threads: int | None = None):
        if sys.platform != "darwin":
            raise RuntimeNotAvailable(f"Core ML predictions need macOS (this is {sys.platform}); "
                                      "use the ONNX, LiteRT or ExecuTorch artifact here")
        import coremltools as ct

        self.version = ct.__version__
        self._models: dict[str, tuple[object, str]] = {}
        for method in artifact["methods"]:
            path, entry = method_entry(folder, artifact, method)
            model = ct.models.MLModel(str(path), function_name=entry)
            self._models[method] = (model, [i.name for i in model.get_spec().description.input])

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        model, keys = self._models[method]
        return np.asarray(next(iter(model.predict(dict(zip(keys, inputs))).values())), dtype=np.float32)

    def close(self) -> None:
        self._models.clear()
