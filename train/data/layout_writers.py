"""Write clips in the real on-disk formats the readers accept: NED and EV9V folder layouts,
DICOM cine files and video files. The phantom's `echoweave data synth` uses these, and the tests
use them to build real-format fixtures.

Every writer is atomic: it writes into a temporary sibling (file or folder) and renames it into
place with `os.replace` (files through `echoweave.edge.atomic.atomic_path`, mode 0644), so a crash
never leaves a half-written dataset behind.

    write_ned(clips, "data/ned")                 # <root>/<case>/<VIEW>/<clip>/img_00001.jpg + annotations.txt
    write_ev9v(clips, "data/ev9v", splits)       # Images/<video>/frame_000001.jpg, labels.csv, train.txt...
    write_dicom(clip, "a.dcm", photometric="YBR_FULL_422")
    write_video(clip, "a.mp4")
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import tempfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from echoweave.edge.atomic import atomic_path
from echoweave.edge.clip import Clip
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.image import rgb_to_gray
from echoweave.edge.views import NED16

JPEG_QUALITY = 95
SPLIT_FILES = {"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}
PHOTOMETRICS = ("MONOCHROME2", "RGB", "YBR_FULL_422")


# ---------------------------------------------------------------- atomic helpers
@contextlib.contextmanager
def _atomic_dir(root: Path):
    """Yield a temp dir next to ``root``; on success rename it to ``root`` (which must be absent or empty)."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise EchoweaveError(f"{root}: already exists and is not an empty folder; refusing to overwrite")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; give the dataset folder the usual 0755
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)  # a folder swap (a whole dataset), not a file write: atomic_path does files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- frames
def _gray(frames: np.ndarray) -> np.ndarray:
    return rgb_to_gray(frames) if frames.ndim == 4 else frames


def _rgb(frames: np.ndarray) -> np.ndarray:
    return frames if frames.ndim == 4 else np.repeat(frames[..., None], 3, axis=-1)


def write_frame_folder(clip: Clip, folder: Path, pattern: str = "img_{:05d}.jpg") -> int:
    """Write each frame as a JPEG (quality 95) named by ``pattern`` (1-based); return the count."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(clip.frames, start=1):
        Image.fromarray(frame).save(folder / pattern.format(i), quality=JPEG_QUALITY)
    return clip.num_frames


def _safe_name(s: str) -> str:
    """A file-system-safe name (letters, digits, ``-``, ``.``); other characters become ``-``."""
    s = re.sub(r"[^A-Za-z0-9.\-]+", "-", str(s)).strip("-.")
    return s or "unknown"


def _view_of(clip: Clip, where: str) -> str:
    if clip.view:
        return clip.view
    if clip.label is not None and 0 <= clip.label < len(NED16):
        return NED16[clip.label]
    raise EchoweaveError(f"{clip.source or where}: clip has no view name or NED label; cannot place it in a labelled layout")


# ---------------------------------------------------------------- NED
def write_ned(clips: Iterable[Clip], root: str | Path) -> Path:
    """Write clips as a NED dataset.

    Layout: ``<root>/<case>/<VIEW>/<clip>/img_00001.jpg…`` and one ``<root>/<case>/annotations.txt``
    per case with lines ``VIEW/CLIP 1 N class_id``. The case is the clip's ``patient_id``; the
    class id is the view's index in NED-16, which equals its NED-12 index for the first 12 views.

    Args:
        clips: clips with ``view`` (or a NED label) and ``patient_id`` set.
        root: destination folder; must not exist or be empty.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    with _atomic_dir(root) as tmp:
        counters: dict[tuple[str, str], int] = defaultdict(int)
        lines: dict[str, list[str]] = defaultdict(list)
        for clip in clips:
            view = _view_of(clip, str(root))
            if view not in NED16:
                raise EchoweaveError(f"{clip.source or root}: view {view!r} is not a NED view")
            case = _safe_name(clip.patient_id or "case")
            counters[case, view] += 1
            name = f"clip_{counters[case, view]:03d}"
            n = write_frame_folder(_gray_clip(clip), tmp / case / view / name)
            lines[case].append(f"{view}/{name} 1 {n} {NED16.index(view)}")
        for case, rows in lines.items():
            (tmp / case / "annotations.txt").write_text("\n".join(rows) + "\n")
    return root


def _gray_clip(clip: Clip) -> Clip:
    return clip if clip.frames.ndim == 3 else clip.gray()


# ---------------------------------------------------------------- EV9V
def write_ev9v(clips: Iterable[Clip], root: str | Path, splits: dict[str, str] | None = None) -> Path:
    """Write clips as an EV9V dataset.

    Layout: ``<root>/Images/<video>/frame_000001.jpg…``, ``<root>/labels.csv`` (columns
    ``names,labels``; labels are view names when every clip has one, else integer class ids),
    ``<root>/patients.csv`` (``names,patient_id``: the real patient, so readers need not guess it
    from the video name) and ``train.txt`` / ``validation.txt`` / ``test.txt`` listing video names.
    Videos are named ``<patient>_<nnn>``.

    Args:
        clips: labelled clips.
        root: destination folder; must not exist or be empty.
        splits: maps a patient_id (or a video name) to ``"train"``, ``"validation"`` or ``"test"``;
            clips whose patient is not in it are listed in no split file. ``None``: no split files.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    if splits and (bad := sorted(set(splits.values()) - set(SPLIT_FILES))):
        raise EchoweaveError(f"{root}: unknown split names {bad}; use {sorted(SPLIT_FILES)}")
    with _atomic_dir(root) as tmp:
        rows, patients, members = [], [], defaultdict(list)
        counters: dict[str, int] = defaultdict(int)
        clips = list(clips)
        use_names = all(c.view for c in clips)
        for clip in clips:
            if clip.label is None and not clip.view:
                raise EchoweaveError(f"{clip.source or root}: EV9V needs labelled clips")
            person = _safe_name(clip.patient_id or "video").replace("_", "-")
            counters[person] += 1
            video = f"{person}_{counters[person]:03d}"
            write_frame_folder(_gray_clip(clip), tmp / "Images" / video, pattern="frame_{:06d}.jpg")
            rows.append((video, clip.view if use_names else clip.label))
            patients.append((video, clip.patient_id))
            if splits is not None:
                split = splits.get(video, splits.get(clip.patient_id))
                if split is not None:
                    members[split].append(video)
        _write_csv(tmp / "labels.csv", ("names", "labels"), rows)
        _write_csv(tmp / "patients.csv", ("names", "patient_id"), patients)
        if splits is not None:
            for split, fname in SPLIT_FILES.items():
                (tmp / fname).write_text("".join(v + "\n" for v in members[split]))
    return root


def _write_csv(path: Path, header: tuple[str, str], rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------- DICOM
_US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
_US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"  # Ultrasound Image Storage (single frame)


def write_dicom(clip: Clip, path: str | Path, photometric: str = "MONOCHROME2") -> Path:
    """Write a clip as an ultrasound DICOM cine loop.

    ``MONOCHROME2`` and ``RGB`` are stored uncompressed (Explicit VR Little Endian);
    ``YBR_FULL_422`` is JPEG baseline (Pillow encodes each frame, 4:2:2 chroma, quality 95;
    `pydicom.encaps.encapsulate` wraps them), as ultrasound machines commonly store cines.
    FrameTime and CineRate carry the fps. PatientID is the clip's ``patient_id``; no name is written.

    Args:
        clip: gray or RGB clip (gray is replicated to 3 channels for colour photometrics).
        path: destination file.
        photometric: ``"MONOCHROME2"``, ``"RGB"`` or ``"YBR_FULL_422"``.

    Returns:
        ``path`` as a Path.
    """
    import io

    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, ExplicitVRLittleEndian, generate_uid

    if photometric not in PHOTOMETRICS:
        raise EchoweaveError(f"{path}: photometric must be one of {PHOTOMETRICS}, got {photometric!r}")
    path = Path(path)
    frames = _gray(clip.frames) if photometric == "MONOCHROME2" else _rgb(clip.frames)
    t, h, w = frames.shape[:3]

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = _US_MULTIFRAME if t > 1 else _US_IMAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "US"
    ds.PatientID = clip.patient_id or ""
    ds.PatientName = ""
    ds.SeriesDescription = clip.view or ""
    ds.Rows, ds.Columns = h, w
    ds.SamplesPerPixel = 1 if photometric == "MONOCHROME2" else 3
    ds.PhotometricInterpretation = photometric
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if t > 1:
        ds.NumberOfFrames = t
        ds.FrameTime = f"{1000.0 / clip.fps:.10g}"  # DS holds 16 characters
        ds.FrameIncrementPointer = 0x00181063  # frames advance by FrameTime
    ds.CineRate = int(round(clip.fps))
    if photometric == "YBR_FULL_422":
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        encoded = []
        for frame in frames:
            buf = io.BytesIO()
            # subsampling=1 is 4:2:2, what the YBR_FULL_422 name promises.
            Image.fromarray(frame, "RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=1)
            encoded.append(buf.getvalue())
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- video
def write_video(clip: Clip, path: str | Path, codec: str | None = None) -> Path:
    """Encode a clip as a video file with PyAV at the clip's fps.

    Codec by extension unless given: ``.mp4``/``.mov``/``.mkv`` → libx264 (CRF 12, yuv420p),
    ``.avi`` → MJPEG (quality scale 2). Both are lossy: expect a few grey levels of error.

    Returns:
        ``path`` as a Path.
    """
    import av

    path = Path(path)
    ext = path.suffix.lower()
    codec = codec or ("mjpeg" if ext == ".avi" else "libx264")
    frames = _rgb(clip.frames)
    t, h, w = frames.shape[:3]
    if h % 2 or w % 2:  # 4:2:0 chroma needs even sizes: pad by one edge row/column
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    rate = Fraction(clip.fps).limit_denominator(1001)
    with atomic_path(path) as tmp:  # keeps the suffix: PyAV picks the container from it
        with av.open(str(tmp), mode="w") as container:
            if codec == "mjpeg":
                stream = container.add_stream("mjpeg", rate=rate)
                stream.pix_fmt = "yuvj420p"
                # Fixed quantiser scale 2 (ffmpeg's `-q:v 2`): near-lossless MJPEG.
                stream.codec_context.qmin = stream.codec_context.qmax = 2
            else:
                stream = container.add_stream(codec, rate=rate, options={"crf": "12"} if codec == "libx264" else {})
                stream.pix_fmt = "yuv420p"
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def write_dicom_folder(clips: Iterable[Clip], root: str | Path, photometric: str = "MONOCHROME2") -> Path:
    """Write clips as ``<root>/<patient>_<nnn>.dcm`` plus ``labels.csv`` (names = file stem, labels = view)."""
    return _write_file_folder(clips, root, lambda c, p: write_dicom(c, p, photometric), ".dcm")


def write_video_folder(clips: Iterable[Clip], root: str | Path, ext: str = ".mp4") -> Path:
    """Write clips as ``<root>/<patient>_<nnn><ext>`` plus ``labels.csv`` (names = file stem, labels = view)."""
    return _write_file_folder(clips, root, write_video, ext)


def _write_file_folder(clips, root, write_one, ext) -> Path:
    root = Path(root)
    with _atomic_dir(root) as tmp:
        rows, counters = [], defaultdict(int)
        for clip in clips:
            person = _safe_name(clip.patient_id or "clip").replace("_", "-")
            counters[person] += 1
            stem = f"{person}_{counters[person]:03d}"
            write_one(clip, tmp / f"{stem}{ext}")
            if clip.view or clip.label is not None:
                rows.append((stem, clip.view if clip.view else clip.label))
        if rows:
            _write_csv(tmp / "labels.csv", ("names", "labels"), rows)
    return root
