"""The synthetic echo phantom: determinism, geometry, cardiac timing, screen furniture, separability."""
from __future__ import annotations

import time

import numpy as np
import pytest

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.views import NED12
from echoweave.train.data.phantom import (
    MOTION_ONLY_PAIRS,
    PhantomConfig,
    clip_phases,
    generate_clip,
    generate_dataset,
    make_patient,
    render_at_phases,
    render_frames,
    sector_mask,
)

SMALL = PhantomConfig(num_patients=2, clips_per_view=1, num_frames=6, height=48, width=48)
BARE = PhantomConfig(num_patients=2, clips_per_view=1, num_frames=6, height=64, width=64,
                     burned_in_text=False, ecg_strip=False)


def test_same_seed_same_bytes_other_seed_other_bytes():
    p = make_patient(3, seed=7)
    a = generate_clip("PSAX_MV", p, 1, PhantomConfig(seed=7, num_frames=5, height=48, width=48))
    b = generate_clip("PSAX_MV", make_patient(3, seed=7), 1, PhantomConfig(seed=7, num_frames=5, height=48, width=48))
    assert a.frames.tobytes() == b.frames.tobytes()
    c = generate_clip("PSAX_MV", make_patient(3, seed=8), 1, PhantomConfig(seed=8, num_frames=5, height=48, width=48))
    assert np.abs(a.frames.astype(int) - c.frames.astype(int)).mean() > 5
    d = generate_clip("PSAX_MV", p, 2, PhantomConfig(seed=7, num_frames=5, height=48, width=48))  # other clip
    assert a.frames.tobytes() != d.frames.tobytes()


def test_global_numpy_state_is_untouched_and_irrelevant():
    np.random.seed(1)
    a = render_frames("PLAX_LV", make_patient(0), 0, SMALL)
    state = np.random.get_state()[1].copy()
    np.random.seed(2)
    b = render_frames("PLAX_LV", make_patient(0), 0, SMALL)
    assert np.array_equal(a, b)
    np.random.seed(1)
    assert np.array_equal(np.random.get_state()[1], state)


def test_single_frame_equals_the_same_frame_of_the_whole_clip():
    p = make_patient(1)
    whole = render_frames("APICAL_4C_LVRV", p, 0, SMALL)
    assert np.array_equal(render_frames("APICAL_4C_LVRV", p, 0, SMALL, frame_indices=4)[0], whole[4])
    assert np.array_equal(render_frames("APICAL_4C_LVRV", p, 0, SMALL, frame_indices=[5, 2]), whole[[5, 2]])


def test_clip_fields_shapes_and_labels():
    cfg = PhantomConfig(num_patients=4, clips_per_view=2, num_frames=7, height=40, width=56)
    clip = generate_clip("PSAX_MV", make_patient(3), 1, cfg)
    assert clip.frames.shape == (7, 40, 56) and clip.frames.dtype == np.uint8
    assert clip.fps == 30.0 and clip.patient_id == "P003"
    assert clip.view == "PSAX_MV" and clip.label == NED12.index("PSAX_MV") == 8
    assert clip.source == "phantom://P003/PSAX_MV/1"
    assert 120 <= clip.meta["heart_rate_bpm"] <= 180
    # A class subset relabels by position in the subset.
    sub = PhantomConfig(num_frames=2, height=32, width=32, class_set=("PSAX_APEX", "PLAX_LV"))
    assert generate_clip("PLAX_LV", make_patient(0), 0, sub).label == 1
    assert generate_clip(10, make_patient(0), 0, sub).view == "PSAX_APEX"  # NED-12 id 10


def test_dataset_order_counts_and_patient_ids():
    cfg = PhantomConfig(num_patients=2, clips_per_view=2, num_frames=2, height=32, width=32)
    clips = generate_dataset(cfg)
    assert len(clips) == 2 * 12 * 2
    assert [c.patient_id for c in clips[:24]] == ["P000"] * 24
    assert [c.view for c in clips[:4]] == ["APICAL_5C", "APICAL_5C", "APICAL_4C_LVRV", "APICAL_4C_LVRV"]
    assert sorted({c.label for c in clips}) == list(range(12))


def test_bad_requests_name_the_problem():
    with pytest.raises(EchoweaveError, match="SUBCOSTAL_IVC"):
        PhantomConfig(class_set=("PLAX_LV", "SUBCOSTAL_IVC"))
    with pytest.raises(EchoweaveError, match="difficulty"):
        PhantomConfig(difficulty=1.5)
    with pytest.raises(EchoweaveError, match="not in the class set"):
        generate_clip("PLAX_LV", make_patient(0), 0, PhantomConfig(class_set=("PSAX_MV",)))
    with pytest.raises(EchoweaveError, match="APICAL_9C"):
        render_frames("APICAL_9C", make_patient(0), 0, SMALL)


@pytest.mark.parametrize("view", ["APICAL_4C_LVRV", "PSAX_PAPS", "PLAX_LV"])
def test_frames_repeat_with_the_heart_rate(view):
    """The frame sequence is periodic; the period (8..16 frames searched) matches 60 * fps / bpm."""
    cfg = PhantomConfig(num_frames=64, height=48, width=48, difficulty=0.0, burned_in_text=False, ecg_strip=False)
    for i in range(3):
        clip = generate_clip(view, make_patient(i), 0, cfg)
        f = clip.frames.reshape(64, -1).astype(np.float32)
        # Mean squared difference between frames L apart is smallest at the cardiac period.
        lags = np.arange(8, 17)
        dist = [((f[L:] - f[:-L]) ** 2).mean() for L in lags]
        expected = 60.0 * cfg.fps / clip.meta["heart_rate_bpm"]
        assert 10.0 <= expected <= 15.0  # 120-180 bpm at 30 fps
        assert abs(lags[int(np.argmin(dist))] - expected) <= 1.0, (view, i, expected, dist)


def test_phases_advance_at_the_clip_heart_rate_and_run_backwards_when_reversed():
    p = make_patient(2)
    fwd = clip_phases("PLAX_RV_IN", p, 0, SMALL)
    bwd = clip_phases("PLAX_RV_OUT", p, 0, SMALL)
    step = generate_clip("PLAX_RV_IN", p, 0, SMALL).meta["heart_rate_bpm"] / 60 / 30
    assert np.allclose(np.mod(np.diff(fwd), 1.0), step, atol=1e-9)
    step_b = generate_clip("PLAX_RV_OUT", p, 0, SMALL).meta["heart_rate_bpm"] / 60 / 30
    assert np.allclose(np.mod(-np.diff(bwd), 1.0), step_b, atol=1e-9)


def test_outside_the_fan_is_black_without_text():
    for view in NED12:
        p = make_patient(NED12.index(view) % 3)
        frames = render_frames(view, p, 0, BARE)
        mask = sector_mask(p, BARE)
        assert frames[:, ~mask].max() == 0
        assert frames[:, mask].mean() > 20  # the fan itself is lit
    assert 0.3 < mask.mean() < 0.7  # a fan, not the whole image or a sliver


def test_text_and_ecg_are_static_outside_the_fan_and_never_inside():
    cfg_text = PhantomConfig(num_frames=6, height=96, width=96)
    cfg_bare = PhantomConfig(num_frames=6, height=96, width=96, burned_in_text=False, ecg_strip=False)
    p = make_patient(4)
    with_text = render_frames("PSAX_AV", p, 0, cfg_text)
    bare = render_frames("PSAX_AV", p, 0, cfg_bare)
    mask = sector_mask(p, cfg_text)
    assert np.array_equal(with_text[:, mask], bare[:, mask])  # furniture never touches the fan
    outside = with_text[:, ~mask]
    assert (outside > 150).sum(axis=1).min() > 80  # plenty of bright text/scale/ECG pixels
    assert (outside == outside[0]).all()  # static over the clip
    top = with_text[0, :10]
    assert (top[:, :40] > 150).sum() > 15 and (top[:, -40:] > 150).sum() > 15  # name top-left, date top-right
    ecg_rows = with_text[0, int(0.86 * 95) + 4:]
    assert (ecg_rows > 100).sum() > 60  # the ECG trace below the fan
    only_text = render_frames("PSAX_AV", p, 0, PhantomConfig(num_frames=2, height=96, width=96, ecg_strip=False))
    assert only_text[0, int(0.86 * 95) + 4:].max() == 0


def test_edge_sector_estimator_recovers_the_phantom_fan():
    """The kit's motion-based fan finder keeps the fan and drops the burned-in text."""
    from echoweave.edge.sector import estimate_sector

    cfg = PhantomConfig(num_frames=16, height=96, width=96)
    p = make_patient(5)
    frames = render_frames("APICAL_4C_LVRV", p, 0, cfg)
    truth = sector_mask(p, cfg)
    est = estimate_sector(frames).mask
    iou = (est & truth).sum() / (est | truth).sum()
    assert iou > 0.9
    text = (frames[0] > 0) & ~truth
    assert (est & text).sum() < 0.05 * text.sum()


def test_patients_differ_in_geometry_and_settings():
    patients = [make_patient(i) for i in range(8)]
    assert [p.patient_id for p in patients[:3]] == ["P000", "P001", "P002"]
    for field in ("probe_angle_deg", "depth_cm", "gain", "heart_rate_bpm", "half_angle_deg"):
        values = [getattr(p, field) for p in patients]
        assert len(set(values)) == 8 and np.std(values) > 0
    assert all(120 <= p.heart_rate_bpm <= 180 for p in patients)
    assert make_patient(3, seed=0) == make_patient(3, seed=0) != make_patient(3, seed=1)
    # The same view of two patients looks different (probe angle, depth, heart size) ...
    a = render_frames("APICAL_2C_LV", patients[0], 0, BARE).astype(np.float32).mean(0)
    b = render_frames("APICAL_2C_LV", patients[1], 0, BARE).astype(np.float32).mean(0)
    both = sector_mask(patients[0], BARE) & sector_mask(patients[1], BARE)
    # ... more than two clips of one patient do.
    a2 = render_frames("APICAL_2C_LV", patients[0], 1, BARE).astype(np.float32).mean(0)
    assert np.abs(a - b)[both].mean() > 1.2 * np.abs(a - a2)[both].mean()


def test_difficulty_lowers_contrast_and_raises_noise():
    p = make_patient(0)
    easy = render_frames("PSAX_MV", p, 0, PhantomConfig(num_frames=8, height=64, width=64, difficulty=0.0,
                                                         burned_in_text=False, ecg_strip=False)).astype(np.float32)
    hard = render_frames("PSAX_MV", p, 0, PhantomConfig(num_frames=8, height=64, width=64, difficulty=1.0,
                                                         burned_in_text=False, ecg_strip=False)).astype(np.float32)
    mask = sector_mask(p, PhantomConfig(height=64, width=64))

    def spread(x):  # bright-vs-dark gap inside the fan, relative to frame-to-frame flicker
        vals = x[:, mask]
        return (np.percentile(vals, 90) - np.percentile(vals, 10)) / np.abs(np.diff(x, axis=0))[:, mask].mean()

    assert spread(easy) > 1.5 * spread(hard)


def test_nearest_class_mean_separates_the_non_motion_views():
    """Single frames of views that differ in anatomy are separable even by a nearest-class-mean rule."""
    paired = {v for pair in MOTION_ONLY_PAIRS for v in pair}
    views = tuple(v for v in NED12 if v not in paired)
    cfg = PhantomConfig(num_patients=9, clips_per_view=1, num_frames=4, height=48, width=48, class_set=views,
                        burned_in_text=False, ecg_strip=False)
    clips = generate_dataset(cfg)
    x = np.stack([c.frames for c in clips]).astype(np.float32).reshape(len(clips), 4, -1)  # (N, T, HW)
    y = np.array([c.label for c in clips])
    train = np.array([int(c.patient_id[1:]) < 6 for c in clips])  # held-out patients P006-P008
    means = np.stack([x[train & (y == k)].reshape(-1, x.shape[-1]).mean(0) for k in range(len(views))])
    dist = ((x[~train][:, :, None, :] - means[None, None]) ** 2).sum(-1)  # (N, T, K)
    acc = (dist.argmin(-1) == y[~train][:, None]).mean()
    assert acc > 0.45, acc  # chance is 1/8


def test_motion_only_partner_frames_are_the_partners_anatomy_at_mirrored_phases():
    """Every frame of PLAX_RV_OUT is exactly a PLAX_RV_IN frame at the mirrored phase (same noise)."""
    p = make_patient(6)
    for a, b in MOTION_ONLY_PAIRS:
        phases_b = clip_phases(b, p, 0, BARE)
        frames_b = render_frames(b, p, 0, BARE)
        assert np.array_equal(render_at_phases(a, p, phases_b, BARE, 0, noise_view=b), frames_b)
        # and rendering A at those phases is not what A's own clip shows (the order differs)
        assert not np.array_equal(render_at_phases(a, p, clip_phases(a, p, 0, BARE), BARE, 0, noise_view=b), frames_b)


def test_default_demo_dataset_generation_time():
    """12 views x 10 patients x 2 clips x 32 frames at 112 x 112: measured and bounded."""
    cfg = PhantomConfig()
    t0 = time.perf_counter()
    n_clips = n_frames = 0
    for clip in generate_dataset(cfg):
        n_clips += 1
        n_frames += clip.num_frames
    seconds = time.perf_counter() - t0
    print(f"\nphantom default dataset: {n_clips} clips, {n_frames} frames of {cfg.height}x{cfg.width} "
          f"in {seconds:.1f} s ({1000 * seconds / n_frames:.2f} ms/frame)")
    assert (n_clips, n_frames) == (240, 7680)
    assert seconds < 60


def test_data_synth_writes_ned_and_ev9v_layouts_that_read_back(tmp_path, capsys):
    import json

    from echoweave.commands.data import synth
    from echoweave.train.data.catalog import scan_dataset

    kw = dict(patients=3, clips_per_view=1, num_frames=3, height=32, width=32, seed=5)
    synth(out=str(tmp_path / "ned"), layout="ned", **kw)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "ned" / "phantom_summary.json").read_text())
    assert (printed["clips"], printed["frames"], printed["views"]) == (36, 108, 12)
    lines = (tmp_path / "ned" / "P001" / "annotations.txt").read_text().splitlines()
    assert len(lines) == 12 and "PSAX_MV/clip_001 1 3 8" in lines
    assert sorted(p.name for p in (tmp_path / "ned" / "P001" / "PSAX_MV" / "clip_001").iterdir()) == \
        ["img_00001.jpg", "img_00002.jpg", "img_00003.jpg"]
    cat = scan_dataset(str(tmp_path / "ned"))
    assert (len(cat), sorted(cat.patients())) == (36, ["P000", "P001", "P002"])

    synth(out=str(tmp_path / "ev9v"), layout="ev9v", **kw)
    capsys.readouterr()
    splits = {s: (tmp_path / "ev9v" / f"{s}.txt").read_text().split() for s in ("train", "validation", "test")}
    assert [len(v) for v in splits.values()] == [12, 12, 12]  # one patient per split, 12 clips each
    owners = {s: {name.split("_")[0] for name in v} for s, v in splits.items()}
    assert owners == {"train": {"P000"}, "validation": {"P001"}, "test": {"P002"}}  # patient-wise
    assert len(scan_dataset(str(tmp_path / "ev9v"))) == 36


def test_generate_recording_concatenates_views_of_one_patient():
    from echoweave.train.data.phantom import PhantomConfig, generate_clip, generate_recording, make_patient

    cfg = PhantomConfig(height=48, width=48, num_frames=8)
    patient = make_patient(5, cfg.seed)
    clip, truth = generate_recording(["PSAX_MV", "APICAL_5C"], 0.5, patient, cfg)
    assert clip.num_frames == 30 and clip.label is None and clip.fps == 30.0
    assert [t["view"] for t in truth] == ["PSAX_MV", "APICAL_5C"]
    assert truth[1]["start_s"] == 0.5 and truth[1]["end_s"] == 1.0
    # Each part is exactly the clip the generator makes for that view (clip index = position).
    import dataclasses

    seg_cfg = dataclasses.replace(cfg, num_frames=15)
    assert np.array_equal(clip.frames[15:], generate_clip("APICAL_5C", patient, 1, seg_cfg).frames)
