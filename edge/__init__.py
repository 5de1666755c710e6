"""echoweave.edge: the small, torch-free library an app embeds.

Holds the clip type, readers (DICOM, video, frame folders), the sector mask, the numpy
preprocessing twin of training's eval transform, the manifest schema, runtime adapters
(ExecuTorch, ONNX Runtime, LiteRT, Core ML; each imported only when opened), the classifier and
streaming classifier, and the scan timeline. Never import torch here.

    import echoweave.edge as ew
    clf = ew.load("artifacts/tfw_r50")
    stream = ew.StreamingClassifier(clf)
    for frame in frames:
        pred = stream.push(frame)
"""
from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError, EchoweaveError

__all__ = ["Classifier", "Clip", "ClipReadError", "EchoweaveError", "Prediction", "StreamingClassifier", "load"]

_LAZY = {"load", "Classifier", "StreamingClassifier", "Prediction"}
_SUBMODULES = {"batch", "classifier", "formats", "manifest", "preprocess", "readers", "runtime", "sector", "timeline",
               "views"}


def __getattr__(name: str):
    # Import on first use: `import echoweave.edge` stays cheap for apps that need only the readers.
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module("echoweave.edge.classifier"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"echoweave.edge.{name}")
    raise AttributeError(f"module 'echoweave.edge' has no attribute {name!r}")
