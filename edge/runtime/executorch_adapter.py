"""ExecuTorch adapter: one multi-method ``.pte`` program, methods loaded on first use.

ExecuTorch's Python bindings take and return torch tensors (they link libtorch), so this adapter
imports torch when it is opened; an app without torch uses ONNX Runtime or LiteRT instead. A
loaded method owns its input/output buffers, so calls are serialised (not re-entrant).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.runtime.base import method_entry


class ExecuTorchAdapter:
    """Run an ExecuTorch artifact (XNNPACK or portable kernels).

    Args:
        folder: the artifact folder.
        artifact: its manifest entry (``format == "executorch"``).
        threads: ignored: ExecuTorch's XNNPACK thread pool is process-wide (resetting it segfaulted with several programs loaded: docs/TOOLCHAIN_NOTES.md "Pitfalls").
    """

    name = "executorch"
    reentrant = False

    def __init__(self, folder: Path, artifact: dict, threads: int | None = None):
        import torch
        from executorch import version as et_version
        from executorch.runtime import Runtime

        self._torch = torch
        self.version = getattr(et_version, "__version__", "unknown")
        runtime = Runtime.get()
        self._programs: dict[Path, object] = {}
        self._methods: dict[str, object] = {}
        for method in artifact["methods"]:
            path, entry = method_entry(folder, artifact, method)
            if path not in self._programs:
                self._programs[path] = runtime.load_program(path)
            loaded = self._programs[path].load_method(entry)
            if loaded is None:
                from echoweave.edge.manifest import ManifestError

                raise ManifestError(f"{path}: program has no method {entry!r}")
            self._methods[method] = loaded

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        # Contiguous copies: views like ``window[None]`` carry stride 0, which ExecuTorch rejects.
        out = self._methods[method].execute([self._torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])[0]
        return out.numpy().copy()  # the output buffer is reused by the next call

    def close(self) -> None:
        self._methods.clear()
        self._programs.clear()
