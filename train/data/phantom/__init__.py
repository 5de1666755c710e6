"""The synthetic echo phantom: the kit's embedded default dataset.

B-mode-like clips of the 12 NED views: a fan-shaped sector on black, Rayleigh speckle, depth
attenuation, gain and noise; chambers, walls and valves that move through a neonatal cardiac
cycle (120-180 bpm at 30 fps); optional burned-in text and an ECG strip outside the fan. Some
view pairs (``MOTION_ONLY_PAIRS``) show the same anatomy with the cycle running in opposite
directions, so a single frame cannot tell them apart and only a temporal model can.

Modules: ``cycle`` (phases and waveforms), ``anatomy`` (the views), ``scanner`` (fan, speckle,
screen furniture), ``generate`` (patients, clips, datasets), ``quality`` (the
frame-quality knob: dropped frames, heavy noise, acoustic shadows).
"""
from echoweave.train.data.phantom.anatomy import MOTION_ONLY_PAIRS, VIEWS
from echoweave.train.data.phantom.quality import Degradation
from echoweave.train.data.phantom.generate import (
    ClipParams,
    PhantomConfig,
    PhantomPatient,
    ScanPlan,
    clip_params,
    clip_phases,
    clip_quality,
    generate_clip,
    generate_dataset,
    generate_recording,
    generate_scan,
    iter_dataset,
    make_patient,
    plan_scan,
    render_at_phases,
    render_frames,
    sector_mask,
    view_id,
)

__all__ = [
    "MOTION_ONLY_PAIRS", "VIEWS", "ClipParams", "PhantomConfig", "PhantomPatient", "ScanPlan", "clip_params",
    "clip_phases", "clip_quality", "Degradation", "generate_clip", "generate_dataset", "generate_recording", "generate_scan", "iter_dataset",
    "make_patient", "plan_scan", "render_at_phases", "render_frames",
    "sector_mask", "view_id",
]
