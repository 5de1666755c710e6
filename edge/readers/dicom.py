"""Read DICOM cine loops (multi-frame ultrasound) into a `Clip`, and pseudonymise patient ids.

Supports RGB, YBR_FULL, YBR_FULL_422 (incl. JPEG baseline, decoded by pydicom 3 through Pillow),
MONOCHROME1/2 (8- to 16-bit) and PALETTE COLOR, single- and multi-frame. The frame rate comes
from the header: FrameTime (0018,1063, ms), FrameTimeVector (0018,1065), CineRate (0018,0040)
or RecommendedDisplayFrameRate (0008,2144); otherwise 30 fps is assumed and
``meta["fps_assumed"]`` says so.

Privacy: the reader never copies PatientName, PatientID or any other identifying header into
the clip, its meta, an error message or a log. ``Clip.patient_id`` is a *pseudonym*:
the first 12 hex digits of sha256(salt + PatientID) (see `pseudonymize_patient_id`), so clips
of one patient still share an id and splits by patient work. A fixed salt is pseudonymisation,
not anonymisation (anyone holding the PatientID can recompute the hash): set the environment
variable ``ECHOWEAVE_ID_SALT`` to a secret per site to make the pseudonyms unlinkable.
Burned-in text in the pixels is removed by the sector mask (`echoweave.edge.sector`).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.image import rgb_to_gray

DEFAULT_FPS = 30.0
_DEFAULT_SALT = "echoweave-patient-v1:"


def pseudonymize_patient_id(patient_id: str) -> str:
    """Return a stable 12-hex-digit pseudonym for a DICOM PatientID (``""`` stays ``""``).

    Args:
        patient_id: the raw PatientID value; never logged.

    Returns:
        ``sha256(salt + patient_id)[:12]`` where the salt is ``$ECHOWEAVE_ID_SALT`` if set.
    """
    patient_id = str(patient_id or "").strip()
    if not patient_id:
        return ""
    salt = os.environ.get("ECHOWEAVE_ID_SALT", _DEFAULT_SALT)
    return hashlib.sha256((salt + patient_id).encode("utf-8")).hexdigest()[:12]


def is_dicom_file(path: str | Path) -> bool:
    """True if the file carries the DICOM Part 10 marker ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_header(path: Path, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not path.is_file():
        raise ClipReadError(path, "file not found")
    try:
        # A file cut inside the pixel data only *warns* ("End of file reached...") and drops the
        # element; turn that into an error instead of reporting "no pixel data".
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as e:
        raise ClipReadError(path, f"not a DICOM file ({e})") from None
    except Exception as e:  # truncated headers raise EOFError, struct.error, ValueError...
        raise ClipReadError(path, f"corrupt or truncated DICOM header ({type(e).__name__}: {e})") from None
    for w in caught:
        if "end of file" in str(w.message).lower():
            raise ClipReadError(path, "truncated DICOM file (end of file inside an element)")
    return ds


def frame_rate_from_header(ds) -> tuple[float, str]:
    """Frames per second from a DICOM dataset and the name of the tag it came from.

    Returns:
        ``(fps, source)``; ``(30.0, "assumed")`` when no timing tag is usable.
    """
    def positive(v):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if np.isfinite(v) and v > 0 else None

    ft = positive(ds.get("FrameTime"))
    if ft:
        return 1000.0 / ft, "FrameTime"
    ftv = ds.get("FrameTimeVector")
    if ftv is not None:
        # The vector holds the increment (ms) before each frame; its first entry is 0.
        steps = [positive(v) for v in list(ftv)[1:]]
        steps = [s for s in steps if s]
        if steps:
            return 1000.0 / float(np.mean(steps)), "FrameTimeVector"
    for tag in ("CineRate", "RecommendedDisplayFrameRate"):
        v = positive(ds.get(tag))
        if v:
            return v, tag
    return DEFAULT_FPS, "assumed"


def dicom_header_facts(path: str | Path) -> dict:
    """Cheap facts for a catalog (no pixel decoding): frames, fps, pseudonymous patient id.

    Raises:
        ClipReadError: not a readable DICOM file or no pixel data.
    """
    path = Path(path)
    ds = _read_header(path, stop_before_pixels=True)
    if "Rows" not in ds or "Columns" not in ds:
        raise ClipReadError(path, "DICOM file has no image (no Rows/Columns)")
    fps, fps_source = frame_rate_from_header(ds)
    return {
        "num_frames": int(ds.get("NumberOfFrames", 1) or 1),
        "fps": fps,
        "fps_source": fps_source,
        "patient_id": pseudonymize_patient_id(ds.get("PatientID", "")),
        "height": int(ds.Rows),
        "width": int(ds.Columns),
        "photometric": str(ds.get("PhotometricInterpretation", "")),
    }


def _to_uint8(arr: np.ndarray, ds, photometric: str) -> np.ndarray:
    """Scale >8-bit or signed monochrome pixels to uint8 (VOI window if present, else min-max)."""
    if arr.dtype == np.uint8:
        return arr
    from pydicom.pixels import apply_voi_lut

    x = arr.astype(np.float32)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        x = apply_voi_lut(arr, ds).astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.clip(np.rint((x - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def frames_held(ds) -> int | None:
    """How many frames the pixel data really holds, from its length (native) or its fragments
    (encapsulated), without decoding; None when that cannot be told.

    Checked against NumberOfFrames before decoding, so a header that declares 100000 frames is
    reported as such instead of as the decoder's own failure (or an attempt to allocate them).
    """
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    data = ds.get("PixelData")
    if data is None:
        return None
    try:
        if ds.file_meta.TransferSyntaxUID.is_encapsulated:
            offsets = parse_basic_offsets(data)
            fragments, _ = parse_fragments(data)
            return len(offsets) if offsets else fragments  # no offset table: one frame per fragment
        bits = int(ds.get("BitsAllocated", 8))
        if bits % 8:
            return None  # 1-bit overlays pack frames across byte boundaries
        frame_bytes = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
        return len(data) // frame_bytes if frame_bytes else None
    except Exception:  # an unparsable fragment table: let the decoder name the problem
        return None


def read_dicom(path: str | Path, *, gray: bool = True) -> Clip:
    """Read a DICOM image or cine loop.

    Args:
        path: a DICOM Part 10 file.
        gray: return ``(T, H, W)`` BT.601 luma; ``False`` keeps ``(T, H, W, 3)`` RGB for colour files.

    Returns:
        A `Clip` with the header frame rate and a pseudonymous ``patient_id``; ``meta`` holds
        format facts only (photometric, transfer syntax, fps source), never patient data.

    Raises:
        ClipReadError: missing, non-DICOM, truncated or undecodable file, or no frames.
    """
    from pydicom.pixels import apply_color_lut, as_pixel_options, convert_color_space, get_decoder

    path = Path(path)
    ds = _read_header(path, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise ClipReadError(path, "DICOM file has no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    declared = int(ds.get("NumberOfFrames", 1) or 1)
    held = frames_held(ds)
    if held is not None and held < declared:
        raise ClipReadError(path, f"header declares {declared} frames, holds {held} (truncated file or a wrong "
                                  "NumberOfFrames)")
    # pydicom 3's decoder converts YCbCr to RGB where it can (raw=False) and reports the
    # photometric interpretation of what it returns, so we never convert twice.
    try:
        decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
        arr, info = decoder.as_array(ds, raw=False, **as_pixel_options(ds))
    except Exception as e:  # truncated pixel data, broken JPEG stream, missing decoder...
        raise ClipReadError(path, f"cannot decode pixel data ({type(e).__name__}: {e})") from None
    decoded_pi = str(info.get("photometric_interpretation", photometric))

    samples = int(ds.get("SamplesPerPixel", 1))
    # Put a leading frame axis on single-frame data: (H, W[, 3]) -> (1, H, W[, 3]).
    if arr.ndim == (2 if samples == 1 else 3):
        arr = arr[None]
    if arr.shape[0] != declared:
        raise ClipReadError(path, f"header declares {declared} frames but {arr.shape[0]} decoded (truncated?)")
    if arr.shape[0] == 0:
        raise ClipReadError(path, "DICOM file has zero frames")

    if decoded_pi == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        arr = (arr >> 8).astype(np.uint8) if arr.dtype != np.uint8 else arr
    elif decoded_pi.startswith("YBR"):
        arr = convert_color_space(arr, decoded_pi, "RGB", per_frame=True)
    elif decoded_pi == "MONOCHROME1":
        arr = _to_uint8(arr, ds, decoded_pi)
        arr = 255 - arr  # MONOCHROME1: 0 is white; flip so bright echoes are bright.
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr, ds, decoded_pi)
    if arr.ndim == 4 and gray:
        arr = rgb_to_gray(arr)

    fps, fps_source = frame_rate_from_header(ds)
    meta = {
        "format": "dicom",
        "photometric": photometric,
        "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")),
        "modality": str(ds.get("Modality", "")),
        "fps_source": fps_source,
        "fps_assumed": fps_source == "assumed",
        "patient_id_is_pseudonym": True,
    }
    return Clip(
        frames=np.ascontiguousarray(arr),
        fps=fps,
        patient_id=pseudonymize_patient_id(ds.get("PatientID", "")),
        source=str(path),
        meta=meta,
    )
