"""ONNX Runtime adapter: one ``InferenceSession`` per method file (ONNX has no multi-method files).

Sessions may be run from several threads at once (ORT's ``Run`` is thread-safe), so this
adapter is re-entrant and the classifier needs no lock around it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.runtime.base import method_entry


class OnnxRuntimeAdapter:
    """Run an ONNX artifact on the CPU execution provider.

    Args:
        folder: the artifact folder.
        artifact: its manifest entry (``format == "onnx"``).
        threads: intra-op threads (None = ORT's default, one per core); methods in
            `SINGLE_THREADED` always get one.
    """

    name = "onnxruntime"
    reentrant = True
    #: Methods run with one intra-op thread whatever ``threads`` says. Each session owns its thread
    #: pool, and a pool spins for a while after its run: while streaming, the window head's
    #: idle-spinning pool took a core from the next ``embed_frame`` and doubled the streamed frame
    #: (full-size ResNet-50 TFW, 2 threads: int8 68.5 -> 35.5 ms, fp32 131 -> 66 ms per frame;
    #: docs/benchmarks/ort_stream_threads.json). The head's own run is under a millisecond either way.
    SINGLE_THREADED = frozenset({"classify_window"})

    def __init__(self, folder: Path, artifact: dict, threads: int | None = None):
        import onnxruntime as ort

        self.version = ort.__version__
        self._sessions: dict[str, tuple[object, str, str]] = {}
        for method in artifact["methods"]:
            path, _ = method_entry(folder, artifact, method)
            opts = ort.SessionOptions()
            if threads or method in self.SINGLE_THREADED:
                opts.intra_op_num_threads = 1 if method in self.SINGLE_THREADED else int(threads)
                opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # warnings about unused initializers are noise for an app
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            self._sessions[method] = (sess, [i.name for i in sess.get_inputs()], sess.get_outputs()[0].name)

    def input_shape(self, method: str) -> list:
        """Declared shape of a method's input (ints; a name or None where the graph leaves it free)."""
        return list(self._sessions[method][0].get_inputs()[0].shape)

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        sess, names, out = self._sessions[method]
        if len(inputs) != len(names):
            raise ValueError(f"method {method!r} takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}")
        return sess.run([out], dict(zip(names, inputs)))[0]

    def close(self) -> None:
        self._sessions.clear()
