"""DICOM cine reader: the real pydicom cine, files built with pydicom, and broken files."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.image import rgb_to_gray
from echoweave.edge.readers import read_clip, read_dicom
from echoweave.edge.readers.dicom import dicom_header_facts, pseudonymize_patient_id
from echoweave.train.data.layout_writers import write_dicom


def _ramp_frames(t=5, h=32, w=48):
    """Smooth moving gradients (JPEG-friendly) as RGB (T, H, W, 3)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [np.stack([xx * 4 + 5 * i, yy * 7 + 3 * i, np.full((h, w), 40 + 20 * i)], -1) for i in range(t)]
    return np.stack(frames).astype(np.uint8)


def _raw_dataset(pixels: np.ndarray, photometric: str, bits: int = 8, **tags) -> Dataset:
    """A minimal uncompressed US dataset built directly with pydicom (independent of our writer)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.PatientName, ds.PatientID = "Doe^Jane", "MRN-0042"
    t, h, w = pixels.shape[:3]
    ds.NumberOfFrames, ds.Rows, ds.Columns = t, h, w
    ds.SamplesPerPixel = 3 if pixels.ndim == 4 else 1
    ds.PhotometricInterpretation = photometric
    if pixels.ndim == 4:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def test_real_cine_shape_fps_and_pixels(ybr_cine_path):
    rgb = read_dicom(ybr_cine_path, gray=False)
    assert rgb.frames.shape == (30, 240, 320, 3) and rgb.frames.dtype == np.uint8
    assert rgb.fps == pytest.approx(1000 / 33.333)  # FrameTime 33.333 ms
    assert rgb.meta["fps_source"] == "FrameTime" and rgb.meta["fps_assumed"] is False
    assert rgb.meta["photometric"] == "YBR_FULL_422" and rgb.meta["transfer_syntax"] == "1.2.840.10008.1.2.4.50"
    # Independent decode of frame 0: Pillow on the first JPEG fragment gives the same RGB pixels.
    ds = pydicom.dcmread(ybr_cine_path)
    first = next(generate_frames(ds.PixelData, number_of_frames=30))
    expected = np.asarray(Image.open(io.BytesIO(first)).convert("RGB"))
    assert np.abs(rgb.frames[0].astype(int) - expected).max() <= 1
    # A gray-scale echo: channels agree (no double YCbCr conversion turning it green).
    assert np.abs(rgb.frames.mean((0, 1, 2)) - rgb.frames.mean()).max() < 1.0
    gray = read_clip(ybr_cine_path)
    assert gray.frames.shape == (30, 240, 320)
    np.testing.assert_array_equal(gray.frames, rgb_to_gray(rgb.frames))


def test_real_cine_patient_id_is_pseudonym_and_never_exposed(ybr_cine_path, monkeypatch):
    monkeypatch.delenv("ECHOWEAVE_ID_SALT", raising=False)
    ds = pydicom.dcmread(ybr_cine_path, stop_before_pixels=True)
    clip = read_dicom(ybr_cine_path)
    expected = hashlib.sha256(("echoweave-patient-v1:" + ds.PatientID).encode()).hexdigest()[:12]
    assert clip.patient_id == expected and len(clip.patient_id) == 12
    exposed = repr(clip.meta) + clip.patient_id
    assert ds.PatientID not in exposed and str(ds.PatientName) not in exposed
    assert dicom_header_facts(ybr_cine_path)["patient_id"] == expected
    monkeypatch.setenv("ECHOWEAVE_ID_SALT", "site-secret")
    assert read_dicom(ybr_cine_path).patient_id != expected  # a site salt changes every pseudonym


@pytest.mark.parametrize("photometric,tol", [("MONOCHROME2", 0), ("RGB", 0), ("YBR_FULL_422", 8)])
def test_written_multiframe_round_trip(tmp_path, photometric, tol):
    rgb = _ramp_frames()
    clip = Clip(rgb, fps=24.0, patient_id="P7")
    path = write_dicom(clip, tmp_path / f"{photometric}.dcm", photometric=photometric)
    back = read_clip(path, gray=photometric == "MONOCHROME2")
    assert back.num_frames == 5 and back.fps == pytest.approx(24.0, rel=1e-6)
    assert back.meta["photometric"] == photometric
    expected = rgb_to_gray(rgb) if photometric == "MONOCHROME2" else rgb
    err = np.abs(back.frames.astype(int) - expected)
    assert err.max() <= tol, (photometric, err.max())
    if photometric == "YBR_FULL_422":
        assert back.meta["transfer_syntax"] == "1.2.840.10008.1.2.4.50"  # JPEG baseline
        assert err.mean() < 2.0
    assert back.patient_id == pseudonymize_patient_id("P7")


def test_single_frame_gives_t1(tmp_path):
    gray = rgb_to_gray(_ramp_frames(t=1))
    path = write_dicom(Clip(gray, fps=30.0), tmp_path / "one.dcm")
    back = read_dicom(path)
    assert back.frames.shape == (1, 32, 48)
    np.testing.assert_array_equal(back.frames, gray)
    assert back.fps == 30.0  # written CineRate 30


def test_ybr_full_uncompressed_is_converted_to_rgb(tmp_path):
    rgb = _ramp_frames(t=3)
    ybr = convert_color_space(rgb.copy(), "RGB", "YBR_FULL", per_frame=True)  # converts in place
    _raw_dataset(ybr, "YBR_FULL", CineRate=50).save_as(tmp_path / "ybr.dcm", enforce_file_format=True)
    back = read_dicom(tmp_path / "ybr.dcm", gray=False)
    assert np.abs(back.frames.astype(int) - rgb).max() <= 2
    assert back.fps == 50.0 and back.meta["fps_source"] == "CineRate"


def test_monochrome1_16bit_is_inverted_and_scaled(tmp_path):
    values = np.array([[[0, 1000], [2000, 4000]]] * 2, np.uint16)  # (2, 2, 2)
    ds = _raw_dataset(values, "MONOCHROME1", bits=16, FrameTimeVector=[0, 40, 40])
    ds.save_as(tmp_path / "m1.dcm", enforce_file_format=True)
    back = read_dicom(tmp_path / "m1.dcm")
    # min-max to 0..255, then flipped: MONOCHROME1 0 is white.
    np.testing.assert_array_equal(back.frames[0], [[255, 191], [127, 0]])
    assert back.fps == pytest.approx(25.0) and back.meta["fps_source"] == "FrameTimeVector"


def test_missing_frame_time_assumes_30(tmp_path):
    _raw_dataset(np.zeros((2, 4, 4), np.uint8), "MONOCHROME2").save_as(tmp_path / "n.dcm", enforce_file_format=True)
    back = read_dicom(tmp_path / "n.dcm")
    assert back.fps == 30.0 and back.meta["fps_assumed"] is True


def test_truncated_real_cine_is_an_error(tmp_path, ybr_cine_path):
    data = open(ybr_cine_path, "rb").read()
    cut = tmp_path / "half.dcm"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClipReadError) as e:
        read_clip(cut)
    assert e.value.path == str(cut) and "truncated" in e.value.problem and "204" not in str(e.value)


def test_truncated_uncompressed_and_garbage_and_missing(tmp_path):
    path = write_dicom(Clip(rgb_to_gray(_ramp_frames()), fps=30.0), tmp_path / "m2.dcm")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])
    with pytest.raises(ClipReadError, match="m2.dcm"):
        read_dicom(path)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(ClipReadError, match="not a DICOM file"):
        read_clip(junk)
    with pytest.raises(ClipReadError, match="file not found"):
        read_clip(tmp_path / "absent.dcm")


def test_garbage_inside_real_cine_pixel_data(tmp_path, ybr_cine_path):
    data = bytearray(open(ybr_cine_path, "rb").read())
    mid = len(data) // 2
    data[mid : mid + 3000] = bytes(3000)  # zeros where JPEG fragments should be
    bad = tmp_path / "garbled.dcm"
    bad.write_bytes(bytes(data))
    with pytest.raises(ClipReadError, match="garbled.dcm: cannot decode pixel data"):
        read_dicom(bad)
