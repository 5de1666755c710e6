"""Runtime adapters: one small class per inference engine, all with the same two calls.

    adapter = open_runtime("onnxruntime", folder, artifact)
    logits = adapter.run("forward", clip)       # numpy in, numpy out

Each adapter imports its engine inside ``__init__`` (never at module import), so
``import echoweave.edge`` stays torch-free and an app installs only the engine it uses. Which
runtime reads which artifact format, and the pip package that provides it, is a table
(`RUNTIMES`, a view of the format table `echoweave.edge.formats`), not a chain of try/except.
"""
from echoweave.edge.runtime.base import (
    PREFERENCE,
    RUNTIMES,
    RuntimeAdapter,
    RuntimeInfo,
    RuntimeNotAvailable,
    available_runtimes,
    open_runtime,
    runtime_available,
)

__all__ = ["PREFERENCE", "RUNTIMES", "RuntimeAdapter", "RuntimeInfo", "RuntimeNotAvailable",
           "available_runtimes", "open_runtime", "runtime_available"]
