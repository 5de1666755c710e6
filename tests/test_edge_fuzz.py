"""Fuzzing the edge's inputs with hypothesis (small example counts: seconds, not minutes).

Readers and `classify_file` get random bytes, damaged copies of the real pydicom cine and random
bytes behind a DICOM preamble: they must return a valid clip/result or raise `ClipReadError`,
never anything else. `StreamingClassifier.push` gets arrays of random dtype/shape/values: each is
either accepted or rejected with `StreamInputError`, and a stream that saw rejected frames gives
exactly the predictions of a clean one. ``manifest.json`` gets random values at random places of
a real manifest, and arbitrary JSON: the loader accepts it or raises one one-line `ManifestError`
naming the file, never anything else (issue 16).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import echoweave.edge as ew
from echoweave.edge.batch import classify_file
from echoweave.edge.classifier import StreamInputError
from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.readers import read_clip
from tests.conftest import make_fan_clip
from tests.helpers.edge_artifacts import exported_artifacts

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return ew.load(exported_artifacts(tiny_checkpoint), runtime="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def cine_bytes():
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("examples_ybr_color.dcm")).read_bytes()


def _read_or_clip_error(data: bytes, suffix: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            clip = read_clip(path)
        except ClipReadError as exc:
            assert exc.path == str(path) and exc.problem
            return None
        assert isinstance(clip, Clip) and clip.frames.dtype == np.uint8 and clip.num_frames >= 1
        return clip


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".dcm", ".mp4", ".avi", ".png", ".jpg", ".bin"]))
def test_random_bytes_never_crash_readers(data, suffix):
    _read_or_clip_error(data, suffix)


@FUZZ
@given(body=st.binary(max_size=400))
def test_random_bytes_behind_a_dicom_preamble(body):
    _read_or_clip_error(b"\0" * 128 + b"DICM" + body, ".dcm")


@FUZZ
@given(cut=st.floats(0.0, 0.999), flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(1, 255)), max_size=4))
def test_damaged_real_cine(cine_bytes, cut, flips):
    data = bytearray(cine_bytes[: max(1, int(len(cine_bytes) * cut))] if cut > 0.05 else cine_bytes)
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    _read_or_clip_error(bytes(data), ".dcm")


@settings(max_examples=8, deadline=None)
@given(data=st.binary(min_size=1, max_size=300), suffix=st.sampled_from([".dcm", ".mp4", ".png"]))
def test_classify_file_turns_every_bad_file_into_a_result(clf, data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        result = classify_file(clf, path)
    assert result.ok == (result.prediction is not None)
    assert result.ok or result.error


frame_arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_, np.uint16]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
)


@FUZZ
@given(bad=st.lists(st.one_of(frame_arrays, hnp.arrays(np.float32, (24, 32), elements=st.just(np.nan)),
                             st.none(), st.integers()), min_size=1, max_size=6))
def test_push_rejects_or_accepts_without_corrupting_state(clf, bad):
    frames = make_fan_clip(t=6, h=24, w=32, seed=5)[0]
    reference = clf.stream(sector=None)
    clean = [p.probabilities for p in (reference.push(f) for f in frames) if p is not None]
    stream = clf.stream(sector=None)
    accepted_any = False
    for item in bad:
        try:
            stream.push(item)
            accepted_any = True
        except StreamInputError as exc:
            assert isinstance(exc, ValueError) and exc.path == "stream"
    if accepted_any:
        stream.reset()  # an accepted odd frame (e.g. 1x1 uint8) is legitimately part of the stream
    got = [p.probabilities for p in (stream.push(f) for f in frames) if p is not None]
    assert len(got) == len(clean) == 3
    np.testing.assert_array_equal(np.stack(got), np.stack(clean))


# ---- manifest.json: random values anywhere, never anything but a one-line ManifestError -------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _paths(node, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


@pytest.fixture(scope="module")
def manifest_doc(tiny_checkpoint):
    import json

    return json.loads((exported_artifacts(tiny_checkpoint) / "manifest.json").read_text())


def _check_manifest(doc, tmp: Path):
    import json

    from echoweave.edge.manifest import ManifestError, read_manifest

    (tmp / "manifest.json").write_text(json.dumps(doc))
    try:
        read_manifest(tmp)
    except ManifestError as exc:
        msg = str(exc)
        assert msg.startswith(str(tmp / "manifest.json") + ": ") and "\n" not in msg and len(msg) < 600
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_manifest_loader_rejects_mutations_with_one_line_errors(manifest_doc, data):
    import copy

    doc = copy.deepcopy(manifest_doc)
    for _ in range(data.draw(st.integers(1, 3))):
        places = [p for p, _ in _paths(doc) if p]
        if not places:
            break
        *parent_path, key = data.draw(st.sampled_from(places))
        parent = doc
        for k in parent_path:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = data.draw(json_values)
    with tempfile.TemporaryDirectory() as tmp:
        _check_manifest(doc, Path(tmp))


@FUZZ
@given(doc=json_values)
def test_manifest_loader_rejects_arbitrary_json(doc):
    with tempfile.TemporaryDirectory() as tmp:
        assert _check_manifest(doc, Path(tmp)) is False


def test_manifest_loader_accepts_the_real_manifest(manifest_doc):
    with tempfile.TemporaryDirectory() as tmp:
        assert _check_manifest(manifest_doc, Path(tmp)) is True
