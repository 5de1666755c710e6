"""One check for every exported model: whole-clip windows (through ``forward`` and through
``embed_frame`` + ``classify_window``) and a live stream give the same probabilities."""
from __future__ import annotations

import numpy as np


def assert_file_and_stream_agree(clf, frames: np.ndarray, eager: np.ndarray) -> list:
    """Check ``clf`` on ``frames`` (sector off) against ``eager`` window probabilities ``(W, K)``.

    Returns:
        What the stream returned for each pushed frame (None before the first full window).
    """
    via_forward = np.stack([p.probabilities for p in clf.predict_windows(frames, sector=None, via="forward")])
    via_features = np.stack([p.probabilities for p in clf.predict_windows(frames, sector=None)])
    stream = clf.stream(sector=None)
    pushed = [stream.push(f) for f in frames]
    streamed = np.stack([p.probabilities for p in pushed if p is not None])
    np.testing.assert_allclose(via_forward, eager, atol=1e-5)
    np.testing.assert_allclose(via_features, via_forward, atol=1e-6)
    np.testing.assert_allclose(streamed, via_forward, atol=1e-6)
    return pushed
