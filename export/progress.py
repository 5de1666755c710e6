"""Progress lines and timings of an export: one line per stage, and per format, precision,
method and step while a converter works.

    progress = Progress()
    with progress.active(), progress.stage("onnx int8"):
        with step("onnx", "int8", "embed_frame", "quantize"):   # anywhere below, e.g. in a converter
            ...
    # [export] onnx int8 embed_frame: quantize ...
    # [export] onnx int8 embed_frame: quantize done in 3.2 s
    progress.timings  # {"onnx int8": 3.4, "onnx int8 / embed_frame / quantize": 3.2}

Converters call the module-level `step`; it reports to the export's active `Progress` (a context
variable set by `Progress.active`) and is silent when none is active (a converter called on its
own, as in tests).
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from typing import Iterator

_ACTIVE: contextvars.ContextVar["Progress | None"] = contextvars.ContextVar("echoweave_export_progress", default=None)


class Progress:
    """Prints ``[export] <what> ...`` / ``... done in X s`` lines and collects the seconds.

    Args:
        show: print the lines (timings are collected either way).
        stream: where lines go (default stdout).
    """

    def __init__(self, show: bool = True, stream=None):
        self.show, self.stream, self.timings = show, stream, {}

    def _print(self, text: str) -> None:
        if self.show:
            print(f"[export] {text}", file=self.stream or sys.stdout, flush=True)

    def note(self, text: str) -> None:
        """Print one ``[export] <text>`` line (no timing)."""
        self._print(text)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one named stage (``load checkpoint``, ``onnx int8: export -> ...``)."""
        start = time.perf_counter()
        self._print(f"{name} ...")
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)
        self._print(f"{name}: done in {self.timings[name]:.1f} s")

    @contextlib.contextmanager
    def step(self, fmt: str, precision: str, method: str, what: str) -> Iterator[None]:
        """Time one converter step of one method (timing key ``"<fmt> <precision> / <method> / <what>"``;
        a step repeated under one key adds up)."""
        start = time.perf_counter()
        self._print(f"{fmt} {precision} {method}: {what} ...")
        yield
        key = f"{fmt} {precision} / {method} / {what}"
        seconds = time.perf_counter() - start
        self.timings[key] = round(self.timings.get(key, 0.0) + seconds, 3)
        self._print(f"{fmt} {precision} {method}: {what} done in {seconds:.1f} s")

    @contextlib.contextmanager
    def active(self) -> Iterator["Progress"]:
        """Make this the progress `step` reports to (in this thread/context)."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


def step(fmt: str, precision: str, method: str, what: str):
    """`Progress.step` of the active export, or a silent no-op when none is active."""
    progress = _ACTIVE.get()
    return progress.step(fmt, precision, method, what) if progress is not None else contextlib.nullcontext()
