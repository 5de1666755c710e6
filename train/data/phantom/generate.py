"""Synthetic patients and clips: the phantom's public API.

    from echoweave.train.data.phantom import PhantomConfig, generate_dataset
    clips = generate_dataset(PhantomConfig())          # 12 views x 10 patients x 2 clips x 32 frames

Everything is deterministic for ``PhantomConfig.seed``: each patient, clip and frame draws from its
own ``numpy`` Generator seeded by ``(seed, tag, patient, view, clip[, frame])``, never from global
state, so one frame can be rendered on its own and equals the same frame of the whole clip.
"""
from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.timeline import BACKGROUND
from echoweave.edge.views import NED12
from echoweave.train.data.phantom.anatomy import VIEWS, Levels, draw_anatomy
from echoweave.train.data.phantom.cycle import CycleState, cardiac_phases
from echoweave.train.data.phantom.quality import Degradation, degrade, draw_degradation
from echoweave.train.data.phantom.scanner import FanGrid, anatomy_coordinates, bmode, screen_overlay, speckle

# Second word of every seed, so patient, clip and frame streams never collide.
_TAG_PATIENT, _TAG_CLIP, _TAG_FRAME, _TAG_SCAN = 0x50A7, 0xC119, 0xF4A3, 0x5CA2

_SURNAMES = ("KOVAC", "ODUYA", "LINDQ", "MARTE", "NGUYE", "SILVA", "HALLO", "PETRO", "AHMED", "TANAK")


@dataclass(frozen=True)
class PhantomConfig:
    """What to generate.

    Attributes:
        num_patients: synthetic patients (ids ``P000`` ...).
        clips_per_view: clips of each view per patient.
        num_frames: frames per clip.
        fps: frame rate.
        height: frame height in pixels.
        width: frame width in pixels.
        difficulty: 0 (clean, high contrast) .. 1 (noisy, low contrast, more probe jitter).
        burned_in_text: burn a fake name, date and depth scale into the corners outside the fan.
        ecg_strip: draw a static ECG trace below the fan.
        seed: master seed.
        class_set: the views to generate; a clip's label is the view's index in this tuple.
        degraded: share of clips rendered at poor quality (dropped frames, heavy noise, an
            acoustic shadow; `echoweave.train.data.phantom.quality`); 0 leaves every clip
            exactly as without the knob.
    """

    num_patients: int = 10
    clips_per_view: int = 2
    num_frames: int = 32
    fps: float = 30.0
    height: int = 112
    width: int = 112
    difficulty: float = 0.3
    burned_in_text: bool = True
    ecg_strip: bool = True
    seed: int = 0
    class_set: tuple[str, ...] = NED12
    degraded: float = 0.0

    def __post_init__(self):
        unknown = [v for v in self.class_set if v not in VIEWS]
        if unknown:
            raise EchoweaveError(f"phantom: no anatomy for view(s) {unknown}; it draws {sorted(VIEWS)}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise EchoweaveError(f"phantom: difficulty must be in [0, 1], got {self.difficulty}")
        if not 0.0 <= self.degraded <= 1.0:
            raise EchoweaveError(f"phantom: degraded (share of poor-quality clips) must be in [0, 1], got {self.degraded}")
        if min(self.height, self.width) < 16 or self.num_frames < 1 or self.fps <= 0:
            raise EchoweaveError(f"phantom: need height, width >= 16, num_frames >= 1, fps > 0 (got {self})")


@dataclass(frozen=True)
class PhantomPatient:
    """One synthetic patient: the probe, the machine settings and the heart that stay fixed across
    all of the patient's clips (so splitting by patient means something).

    Attributes:
        index: position in the cohort.
        patient_id: ``"P000"`` style id.
        probe_angle_deg: habitual probe tilt of this patient's scans.
        depth_cm: imaging depth (deeper = the heart looks smaller).
        heart_size: heart scale relative to the average neonate.
        gain: overall receive gain.
        heart_rate_bpm: resting heart rate (neonatal, 120-180).
        half_angle_deg: half the fan's opening angle.
        attenuation: depth attenuation left after time-gain compensation.
        name: fake display name for the burned-in text.
        study_date: fake study date for the burned-in text.
    """

    index: int
    patient_id: str
    probe_angle_deg: float
    depth_cm: float
    heart_size: float
    gain: float
    heart_rate_bpm: float
    half_angle_deg: float
    attenuation: float
    name: str = ""
    study_date: str = ""

    @property
    def zoom(self) -> float:
        return self.heart_size * 8.0 / self.depth_cm


def make_patient(index: int, seed: int = 0) -> PhantomPatient:
    """Draw patient ``index`` of the cohort for ``seed``."""
    rng = np.random.default_rng([seed, _TAG_PATIENT, index])
    letters = "".join(rng.choice(list(string.ascii_uppercase), 2))
    return PhantomPatient(
        index=index,
        patient_id=f"P{index:03d}",
        probe_angle_deg=float(rng.uniform(-12, 12)),
        depth_cm=float(rng.uniform(7.0, 9.5)),
        heart_size=float(rng.uniform(0.92, 1.08)),
        gain=float(rng.uniform(0.8, 1.25)),
        heart_rate_bpm=float(rng.uniform(125, 175)),
        half_angle_deg=float(rng.uniform(31, 36)),
        attenuation=float(rng.uniform(0.3, 0.9)),
        name=f"{_SURNAMES[int(rng.integers(len(_SURNAMES)))]}^{letters}",
        study_date=f"20{int(rng.integers(18, 26))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
    )


@dataclass(frozen=True)
class ClipParams:
    """What varies between clips of one patient and view: cycle timing and small probe jitter."""

    start_phase: float
    heart_rate_bpm: float
    angle_jitter_deg: float
    shift: tuple[float, float]
    zoom_jitter: float
    ecg_phase: float
    base_speckle: np.ndarray = field(repr=False)  # (2, H, W) standard normals


def view_id(view: str | int) -> int:
    """NED-12 index of ``view`` (a name, or an id that is returned unchanged)."""
    if isinstance(view, (int, np.integer)):
        if not 0 <= int(view) < len(NED12):
            raise EchoweaveError(f"phantom: view id {view} out of range 0..{len(NED12) - 1}")
        return int(view)
    if view not in VIEWS:
        raise EchoweaveError(f"phantom: no anatomy for view {view!r}; it draws {sorted(VIEWS)}")
    return NED12.index(view)


def clip_params(view: str | int, patient: PhantomPatient, clip_index: int, cfg: PhantomConfig) -> ClipParams:
    """Draw the per-clip settings of ``(patient, view, clip_index)``."""
    rng = np.random.default_rng([cfg.seed, _TAG_CLIP, patient.index, view_id(view), clip_index])
    d = cfg.difficulty
    hr = float(np.clip(patient.heart_rate_bpm * rng.uniform(0.96, 1.04), 120, 180))
    return ClipParams(
        start_phase=float(rng.uniform(0, 1)),
        heart_rate_bpm=hr,
        angle_jitter_deg=float(rng.normal(0, 2 + 5 * d)),
        shift=(float(rng.normal(0, 0.012 + 0.02 * d)), float(rng.normal(0, 0.012 + 0.02 * d))),
        zoom_jitter=float(rng.uniform(0.97, 1.03)),
        ecg_phase=float(rng.uniform(0, 1)),
        base_speckle=rng.standard_normal((2, cfg.height, cfg.width), dtype=np.float32),
    )


def fan_grid(patient: PhantomPatient, cfg: PhantomConfig) -> FanGrid:
    """The fan geometry of ``patient``'s images at ``cfg``'s size."""
    return FanGrid.build(cfg.height, cfg.width, patient.half_angle_deg)


def sector_mask(patient: PhantomPatient, cfg: PhantomConfig) -> np.ndarray:
    """``(H, W)`` bool, True inside the fan of ``patient``'s images."""
    return fan_grid(patient, cfg).mask


def render_at_phases(view: str | int, patient: PhantomPatient, phases: Sequence[float], cfg: PhantomConfig,
                     clip_index: int = 0, frame_indices: Sequence[int] | None = None,
                     noise_view: str | int | None = None,
                     probe_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Render ``view`` at explicit cardiac phases (no time reversal applied here).

    Args:
        view: view name or NED-12 id.
        patient: the patient.
        phases: ``(T,)`` phases in ``[0, 1)``.
        cfg: sizes, difficulty, seed.
        clip_index: which clip's probe jitter and speckle to use.
        frame_indices: frame numbers that seed the per-frame noise (default ``0..T-1``).
        noise_view: take clip settings and noise from this view instead (default: ``view``);
            with it, a view and its motion-only partner can be rendered from identical noise.
        probe_offset: ``(angle_deg, shift_x, shift_y)`` added to the clip's probe pose (anatomy
            units: the fan radius is 1); a moving probe between views (`generate_scan`).

    Returns:
        ``(T, H, W)`` uint8 frames.
    """
    name = NED12[view_id(view)]
    nv = view_id(view if noise_view is None else noise_view)
    params = clip_params(nv, patient, clip_index, cfg)
    phases = np.asarray(phases, dtype=np.float64).reshape(-1)
    frames = np.arange(len(phases)) if frame_indices is None else np.asarray(frame_indices).reshape(-1)
    if len(frames) != len(phases):
        raise EchoweaveError(f"phantom: {len(phases)} phases but {len(frames)} frame indices")
    d = cfg.difficulty
    grid = fan_grid(patient, cfg)
    zoom = patient.zoom * params.zoom_jitter
    angle = patient.probe_angle_deg + params.angle_jitter_deg + probe_offset[0]
    X, Y = anatomy_coordinates(grid, angle, zoom, (params.shift[0] + probe_offset[1], params.shift[1] + probe_offset[2]))
    levels = Levels.for_difficulty(d)
    echo = np.full((len(phases), cfg.height, cfg.width), levels.tissue, dtype=np.float32)
    draw_anatomy(VIEWS[name].parts, X, Y, CycleState.at(phases), 1.0 / (grid.radius_px * zoom), levels, echo)

    # Per-frame noise from per-frame generators: frame t is the same alone or inside its clip.
    fresh = np.empty((len(frames), 3, cfg.height, cfg.width), dtype=np.float32)
    for i, t in enumerate(frames):
        rng = np.random.default_rng([cfg.seed, _TAG_FRAME, patient.index, nv, clip_index, int(t)])
        fresh[i] = rng.standard_normal((3, cfg.height, cfg.width), dtype=np.float32)
    sp = speckle(params.base_speckle, fresh[:, :2], correlation=0.97 - 0.25 * d, strength=0.55 + 0.4 * d)
    out = bmode(echo, grid, sp, patient.gain, patient.attenuation, fresh[:, 2], noise_sigma=0.015 + 0.06 * d)
    if cfg.burned_in_text or cfg.ecg_strip:
        overlay = screen_overlay(
            grid, {"top_left": patient.name, "top_right": patient.study_date}, patient.depth_cm,
            params.heart_rate_bpm, cfg.fps, params.ecg_phase if cfg.ecg_strip else None, cfg.burned_in_text)
        np.maximum(out, overlay, out=out)
    return out


def clip_phases(view: str | int, patient: PhantomPatient, clip_index: int, cfg: PhantomConfig,
                frame_indices: Sequence[int] | None = None) -> np.ndarray:
    """Cardiac phase of each frame of a clip (time-reversed views run backwards)."""
    name = NED12[view_id(view)]
    params = clip_params(name, patient, clip_index, cfg)
    frames = np.arange(cfg.num_frames) if frame_indices is None else np.asarray(frame_indices).reshape(-1)
    return cardiac_phases(params.start_phase, params.heart_rate_bpm, cfg.fps, frames, VIEWS[name].reversed)


def clip_quality(view: str | int, patient: PhantomPatient, clip_index: int, cfg: PhantomConfig) -> Degradation:
    """What `PhantomConfig.degraded` does to this clip (`Degradation`; clean for most)."""
    return draw_degradation(cfg.degraded, cfg.seed, patient.index, view_id(view), clip_index, patient.half_angle_deg)


def render_frames(view: str | int, patient: PhantomPatient, clip_index: int, cfg: PhantomConfig,
                  frame_indices: Sequence[int] | int | None = None) -> np.ndarray:
    """Frames of one clip, or only the frames at ``frame_indices`` (degraded when
    `clip_quality` says so).

    Returns:
        ``(T, H, W)`` uint8; ``T = cfg.num_frames`` or ``len(frame_indices)``.
    """
    frames = np.arange(cfg.num_frames) if frame_indices is None else np.atleast_1d(np.asarray(frame_indices))
    phases = clip_phases(view, patient, clip_index, cfg, frames)
    out = render_at_phases(view, patient, phases, cfg, clip_index, frames)
    quality = clip_quality(view, patient, clip_index, cfg)
    return degrade(out, frames, quality, fan_grid(patient, cfg), (cfg.seed, patient.index, view_id(view), clip_index))


def generate_clip(view: str | int, patient: PhantomPatient, clip_index: int, cfg: PhantomConfig) -> Clip:
    """One labelled phantom clip; ``label`` is the view's index in ``cfg.class_set``."""
    name = NED12[view_id(view)]
    if name not in cfg.class_set:
        raise EchoweaveError(f"phantom: view {name} is not in the class set {cfg.class_set}")
    params = clip_params(name, patient, clip_index, cfg)
    return Clip(
        frames=render_frames(name, patient, clip_index, cfg),
        fps=float(cfg.fps),
        patient_id=patient.patient_id,
        label=cfg.class_set.index(name),
        source=f"phantom://{patient.patient_id}/{name}/{clip_index}",
        view=name,
        meta={"format": "phantom", "seed": cfg.seed, "heart_rate_bpm": params.heart_rate_bpm,
              "start_phase": params.start_phase, "time_reversed": VIEWS[name].reversed,
              "difficulty": cfg.difficulty, "quality": clip_quality(name, patient, clip_index, cfg).to_meta()},
    )


def iter_dataset(cfg: PhantomConfig = PhantomConfig()) -> Iterator[Clip]:
    """Yield every clip: patients in order, then views in ``cfg.class_set`` order, then clips."""
    for p in range(cfg.num_patients):
        patient = make_patient(p, cfg.seed)
        for name in cfg.class_set:
            for c in range(cfg.clips_per_view):
                yield generate_clip(name, patient, c, cfg)


def generate_dataset(cfg: PhantomConfig = PhantomConfig()) -> list[Clip]:
    """All clips of :func:`iter_dataset` as a list."""
    return list(iter_dataset(cfg))


def generate_recording(views: Sequence[str], seconds_per_view: float, patient: PhantomPatient,
                       cfg: PhantomConfig = PhantomConfig()) -> tuple[Clip, list[dict]]:
    """A long scan: one patient, several views one after another (a sonographer's sweep).

    Each view contributes ``seconds_per_view`` of frames (a fresh clip index per view, so heart
    phase and probe jitter change at each cut); the probe geometry stays the patient's, as in a
    real scan. Used by the demo's scan timeline and the benchmark soak.

    Returns:
        ``(clip, truth)``: the recording (label None) and the true segments
        ``[{"view", "start_s", "end_s"}]``.
    """
    n = max(1, int(round(seconds_per_view * cfg.fps)))
    seg_cfg = dataclasses.replace(cfg, num_frames=n)
    parts, truth = [], []
    for i, view in enumerate(views):
        parts.append(generate_clip(view, patient, i, seg_cfg).frames)
        truth.append({"view": NED12[view_id(view)], "start_s": i * n / cfg.fps, "end_s": (i + 1) * n / cfg.fps})
    clip = Clip(np.concatenate(parts), fps=float(cfg.fps), patient_id=patient.patient_id, label=None,
                source=f"phantom://{patient.patient_id}/recording", view=None,
                meta={"format": "phantom", "seed": cfg.seed, "segments": truth})
    return clip, truth


@dataclass(frozen=True)
class ScanPlan:
    """What one full-length examination shows, in order.

    Attributes:
        views: the views visited, in order; a view may come back later (a revisit), never twice
            in a row.
        view_s: seconds spent on each visit.
        transition_s: seconds of probe movement (background: no standard view) between visit i
            and visit i + 1; ``len(views) - 1`` entries, 0 for a cut.
    """

    views: tuple[str, ...]
    view_s: tuple[float, ...]
    transition_s: tuple[float, ...]

    def __post_init__(self):
        if not self.views or len(self.view_s) != len(self.views) or len(self.transition_s) != len(self.views) - 1:
            raise EchoweaveError(f"phantom: a scan plan needs views, one duration per view and one transition "
                                 f"between each pair (got {len(self.views)}, {len(self.view_s)}, {len(self.transition_s)})")
        if any(a == b for a, b in zip(self.views, self.views[1:])):
            raise EchoweaveError(f"phantom: a scan plan visits a view twice in a row: {self.views}")
        if min(self.view_s) <= 0 or min(self.transition_s, default=0.0) < 0:
            raise EchoweaveError(f"phantom: view durations must be > 0 and transitions >= 0 (got {self})")


def plan_scan(index: int, cfg: PhantomConfig = PhantomConfig(), scan_s: float = 120.0) -> ScanPlan:
    """Draw examination ``index`` of ``cfg.seed``: 4-10 views of the class set in random order,
    one or two revisits of earlier views (at most one visit per 8 s of scan), transitions of
    1-4 s between visits, and visit
    durations drawn in proportion 3:18 and scaled so the scan lasts about ``scan_s`` seconds
    (a view not drawn is absent from this scan: its true duration is 0).

    Raises:
        EchoweaveError: ``scan_s`` leaves under 1 s per visit after the transitions.
    """
    rng = np.random.default_rng([cfg.seed, _TAG_SCAN, index])
    k = int(rng.integers(min(4, len(cfg.class_set)), min(10, len(cfg.class_set)) + 1))
    views = [cfg.class_set[i] for i in rng.permutation(len(cfg.class_set))[:k]]
    for _ in range(int(rng.integers(1, 3)) if k > 2 else 0):  # revisits: back to an earlier view
        at = int(rng.integers(2, len(views) + 1))
        choices = [v for v in views[: at - 1] if v != views[at - 1] and (at == len(views) or v != views[at])]
        if choices:
            views.insert(at, choices[int(rng.integers(len(choices)))])
    views = views[: max(2, int(scan_s // 8))]  # short scans: fewer visits (about 8 s or more each)
    transitions = rng.uniform(1.0, 4.0, len(views) - 1)
    weights = rng.uniform(3.0, 18.0, len(views))
    view_s = weights * (scan_s - transitions.sum()) / weights.sum()
    if view_s.min() < 1.0:
        raise EchoweaveError(f"phantom: a scan of {scan_s} s is too short for {len(views)} visits and their "
                             f"transitions ({transitions.sum():.1f} s); give a longer scan")
    return ScanPlan(tuple(views), tuple(float(x) for x in view_s), tuple(float(x) for x in transitions))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def generate_scan(plan: ScanPlan, patient: PhantomPatient, cfg: PhantomConfig = PhantomConfig(),
                  index: int = 0) -> tuple[Clip, list[dict]]:
    """A full-length examination: the plan's views with background between them, where the probe
    moves from one view to the next (true segment boundaries returned with it).

    Each visit is a clip of its own (clip index = visit number: fresh heart phase and probe
    jitter). During a transition of L frames the outgoing view's probe tilts and slides away
    (up to ``index``-seeded 25-40 degrees and a quarter of the fan; the pose is updated every
    ~0.1 s) while the incoming view's probe arrives from its own far pose; the two images cross-fade and the fan dims in the middle
    (contact lost while moving), so mid-transition frames show no standard view. Both sides keep
    their own cardiac cycle and per-frame noise across the transition.

    Args:
        plan: the views, visit and transition durations (`plan_scan`).
        patient: the patient (probe angle, depth, heart rate stay theirs).
        cfg: frame size, fps, difficulty, seed; ``num_frames`` is ignored.
        index: scan number (seeds the probe's path between views).

    Returns:
        ``(clip, truth)``: the recording (label None, ``meta["segments"]`` = truth) and its true
        segments ``[{"view", "start_s", "end_s"}]`` tiling ``[0, duration)``; transitions are
        ``{"view": "background"}``. Boundaries fall on frames (``start_s = frame / fps``).
    """
    fps = float(cfg.fps)
    n_view = [max(1, int(round(s * fps))) for s in plan.view_s]
    n_tr = [int(round(s * fps)) for s in plan.transition_s]
    rng = np.random.default_rng([cfg.seed, _TAG_SCAN, index, patient.index])
    fan = sector_mask(patient, cfg)
    step = max(1, int(round(fps / 10)))  # the moving probe's pose changes every ~0.1 s
    tracks = []  # per visit: (frames before the steady part, frames of lead-in + steady + lead-out)
    for i, view in enumerate(plan.views):
        lead_in = n_tr[i - 1] if i > 0 else 0
        lead_out = n_tr[i] if i < len(n_tr) else 0
        frames = np.arange(lead_in + n_view[i] + lead_out)
        phases = clip_phases(view, patient, i, cfg, frames)
        out = np.empty((len(frames), cfg.height, cfg.width), np.uint8)
        steady = slice(lead_in, lead_in + n_view[i])
        out[steady] = render_at_phases(view, patient, phases[steady], cfg, i, frames[steady])
        for part, (first, count, arriving) in enumerate(((0, lead_in, True), (steady.stop, lead_out, False))):
            if count == 0:
                continue
            direction = rng.choice([-1.0, 1.0])
            far = np.array([direction * rng.uniform(25, 40), rng.uniform(-0.25, 0.25), rng.uniform(0.05, 0.2)])
            for k in range(0, count, step):  # one pose per `step` frames: rendering is per pose
                mid = k + (min(step, count - k) - 1) / 2
                away = (count - mid) / (count + 1) if arriving else (mid + 1) / (count + 1)  # 0 = on the view
                t = slice(first + k, first + min(k + step, count))
                out[t] = render_at_phases(view, patient, phases[t], cfg, i, frames[t],
                                          probe_offset=tuple(float(x) for x in _smoothstep(away) * far))
        tracks.append(out)
    parts, truth, t0 = [], [], 0
    for i, view in enumerate(plan.views):
        lead_in = n_tr[i - 1] if i > 0 else 0
        parts.append(tracks[i][lead_in:lead_in + n_view[i]])
        truth.append({"view": NED12[view_id(view)], "start_s": t0 / fps, "end_s": (t0 + n_view[i]) / fps})
        t0 += n_view[i]
        if i < len(n_tr) and n_tr[i]:
            L = n_tr[i]
            w = _smoothstep((np.arange(L) + 1.0) / (L + 1))[:, None, None]  # weight of the incoming view
            a = tracks[i][-L:].astype(np.float32)
            b = tracks[i + 1][:L].astype(np.float32)
            dim = np.where(fan, 1.0 - 0.5 * np.sin(np.pi * w), 1.0)  # (L, H, W): the fan fades mid-way
            parts.append(np.clip(((1 - w) * a + w * b) * dim + 0.5, 0, 255).astype(np.uint8))
            truth.append({"view": BACKGROUND, "start_s": t0 / fps, "end_s": (t0 + L) / fps})
            t0 += L
    clip = Clip(np.concatenate(parts), fps=fps, patient_id=patient.patient_id, label=None,
                source=f"phantom://{patient.patient_id}/scan/{index}", view=None,
                meta={"format": "phantom", "seed": cfg.seed, "segments": truth, "difficulty": cfg.difficulty})
    return clip, truth
