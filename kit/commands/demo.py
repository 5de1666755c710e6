"""`echoweave demo`: the main job end to end on the embedded synthetic dataset.

    phantom -> NED-layout dataset on disk -> inspect -> stage 1 (image) -> stage 2 (TFW)
    -> held-out evaluation (+ McNemar vs stage 1) -> export (ExecuTorch, ONNX, LiteRT, Core ML;
    fp32 + int8; parity report) -> classify the real pydicom cine and a phantom scan recording
    (timeline) with the torch-free edge runtime -> demo_out/REPORT.md

Everything it makes goes under ``--out`` (default ``demo_out/``).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


def demo(out: str = "demo_out", recipe: str = "demo_cpu", patients: int | None = None, seed: int = 0):
    """Run the kit end to end on the synthetic echo phantom and write OUT/REPORT.md.

    The demo owns OUT: a second run replaces the runs, evaluation and artifacts of the first.

    Args:
        out: Folder for everything the demo makes (dataset, runs, reports).
        recipe: Two-stage training recipe (shipped name or YAML path).
        patients: Synthetic patients in the generated dataset (default: the recipe's
            ``data.phantom_patients``).
        seed: Phantom and training seed; the models are also scored on the patients of the
            phantom generated with ``seed + 1``.
    """
    from echoweave.commands.data import synth
    from echoweave.edge.atomic import write_text_atomic
    from echoweave.export.pipeline import export_checkpoint
    from echoweave.train.data.catalog import scan_dataset
    from echoweave.train.engine.evaluate import evaluate_checkpoint
    from echoweave.train.engine.recipe import load_recipe, run_recipe

    t0 = time.time()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}

    base = load_recipe(recipe).get("base", {}).get("data", {})
    patients = int(patients or base.get("phantom_patients", 12))
    dataset, other_dataset = out_dir / "dataset", out_dir / "dataset_other_seed"
    for folder in (dataset, other_dataset):  # the demo owns OUT: a rerun writes its datasets afresh
        shutil.rmtree(folder, ignore_errors=True)
    t = time.time()
    synth(out=str(dataset), layout="ned", patients=patients,
          clips_per_view=base.get("phantom_clips_per_view", 2), num_frames=base.get("phantom_frames", 32),
          height=base.get("phantom_size", 112), width=base.get("phantom_size", 112), seed=seed)
    timings["dataset"] = time.time() - t
    catalog = scan_dataset(str(dataset), class_set=base.get("class_set", "ned12"))
    summary = catalog.summary()
    write_text_atomic(out_dir / "dataset_summary.json", json.dumps(summary, indent=2, sort_keys=True))

    t = time.time()
    runs = run_recipe(recipe, out_dir / "runs", data={"path": str(dataset)}, seed=seed, overwrite=True)
    timings["training"] = time.time() - t

    t = time.time()
    evaluation = evaluate_checkpoint(str(runs["stage2"].checkpoint), out=str(out_dir / "evaluation"),
                                     compare=str(runs["stage1"].checkpoint), device="cpu")
    # The same models on people of another phantom seed, written and read back like the training set
    # (JPEG frames in the NED layout; an in-memory phantom would add a compression shift).
    synth(out=str(other_dataset), layout="ned", patients=max(2, patients // 2),
          clips_per_view=base.get("phantom_clips_per_view", 2), num_frames=base.get("phantom_frames", 32),
          height=base.get("phantom_size", 112), width=base.get("phantom_size", 112), seed=seed + 1)
    other_seed = evaluate_checkpoint(str(runs["stage2"].checkpoint), data_path=str(other_dataset), split="all",
                                     out=str(out_dir / "evaluation_other_seed"),
                                     compare=str(runs["stage1"].checkpoint), device="cpu")
    other_seed["phantom_seed"] = seed + 1
    timings["evaluation"] = time.time() - t

    t = time.time()
    exported = export_checkpoint(runs["stage2"].checkpoint, out_dir / "artifacts", overwrite=True)
    timings["export"] = time.time() - t

    t = time.time()
    classified = _classify_examples(exported.folder, out_dir / "classify", patients, seed)
    timings["classify"] = time.time() - t

    t = time.time()
    bench_md = _bench(exported.folder, out_dir / "bench")
    timings["bench"] = time.time() - t
    timings["total"] = time.time() - t0

    report = out_dir / "REPORT.md"
    write_text_atomic(report, _report(out_dir, summary, runs, evaluation, timings, recipe, other_seed)
                      + _export_report(exported) + _classify_report(classified) + bench_md)
    print(f"\nechoweave demo finished in {timings['total']:.0f} s. Read {report} first.")


def _pairs_line(pairs: dict) -> str:
    """``A/B 0.917 (n=12), ...`` for the motion-only pairs of an evaluation."""
    return ", ".join(f"{k.replace('|', '/')} {v['accuracy']:.3f} (n={v['n']})" for k, v in pairs.items()) or "none"


def _report(out_dir: Path, summary: dict, runs: dict, ev: dict, timings: dict, recipe: str, other: dict) -> str:
    v, c = ev["video"], ev["clip"]
    mc = ev.get("mcnemar_vs", {})
    lines = [
        "# echoweave demo report",
        "",
        "**Synthetic data.** Everything below was trained and measured on the echoweave echo phantom "
        "(a generator of B-mode-like clips), not on patients. It shows the kit works end to end; it "
        "says nothing about clinical accuracy.",
        "",
        "## Dataset",
        f"- Written in the NED layout to `{out_dir / 'dataset'}` and read back through the NED reader.",
        f"- {summary.get('patients', '?')} patients, {summary.get('clips', '?')} clips, "
        f"{summary.get('frames', '?')} frames, {len(summary.get('views', {}))} views "
        f"(`dataset_summary.json`).",
        "",
        "## Training (recipe `%s`, CPU)" % recipe,
    ]
    for stage in ("stage1", "stage2"):
        r = runs[stage]
        m = r.metrics
        lines.append(f"- {stage}: `{r.checkpoint}`; {m.get('epoch')} epochs, final train loss "
                     f"{m.get('train_loss', float('nan')):.3f}, validation clip accuracy "
                     f"{m.get('val_clip_accuracy', float('nan')):.3f} (held-out patients).")
    lo, hi = v["accuracy_ci95"]
    lines += [
        "",
        "## Held-out evaluation of the TFW model (patients never seen in training)",
        f"- Video level (mean of a recording's windows): accuracy **{v['accuracy']:.3f}** "
        f"[95% Clopper-Pearson CI {lo:.3f}-{hi:.3f}], macro F1 {v['f1_macro']:.3f}, "
        f"Cohen's kappa {v['cohen_kappa'] if v['cohen_kappa'] is None else round(v['cohen_kappa'], 3)}, N = {v['n']}.",
        f"- Window level (one window of T frames): accuracy {c['accuracy']:.3f}, N = {c['n']}.",
    ]
    model = runs["stage2"].model.cfg
    lines.append(f"- Model: `{model.name}`, contrast `{model.contrast}`, frame stride {model.frame_stride} "
                 f"(a window spans {model.window_span} frames).")
    cmp = ev.get("compare", {})
    lines.append(f"- Motion-only view pairs (same anatomy, cycle reversed; one frame cannot tell them apart, "
                 f"chance 0.5), video level: TFW {_pairs_line(ev.get('motion_pairs_video', {}))}; stage-1 image "
                 f"model (mean vote) {_pairs_line(cmp.get('motion_pairs_video', {}))}.")
    if mc:
        lines.append(f"- McNemar's exact test vs the stage-1 image model (video level, same recordings; image "
                     f"accuracy {cmp.get('video_accuracy', float('nan')):.3f}): b = {mc['b']} (TFW right, image "
                     f"wrong), c = {mc['c']}, p = {mc['p']:.4g}.")
    lines.append(f"- Confusion matrix: `{out_dir / 'evaluation' / 'eval_confusion.png'}`; all metrics: "
                 f"`{out_dir / 'evaluation' / 'eval_metrics.json'}`.")
    ov = other["video"]
    ocmp = other.get("compare", {})
    lines += [
        "",
        f"## The same models on another phantom seed's patients (seed {other.get('phantom_seed')}, every clip)",
        f"- TFW video-level accuracy {ov['accuracy']:.3f} [{ov['accuracy_ci95'][0]:.3f}-{ov['accuracy_ci95'][1]:.3f}], "
        f"N = {ov['n']}; motion-only pairs {_pairs_line(other.get('motion_pairs_video', {}))}.",
        f"- Stage-1 image model (mean vote): accuracy {ocmp.get('video_accuracy', float('nan')):.3f}; motion-only "
        f"pairs {_pairs_line(ocmp.get('motion_pairs_video', {}))}.",
    ]
    omc = other.get("mcnemar_vs", {})
    if omc:
        lines.append(f"- McNemar (video level): b = {omc['b']}, c = {omc['c']}, p = {omc['p']:.4g}.")
    lines += [
        f"- Confusion matrix: `{out_dir / 'evaluation_other_seed' / 'eval_confusion.png'}`.",
        "",
        "## Time",
        *[f"- {k}: {val:.1f} s" for k, val in timings.items()],
        "",
    ]
    return "\n".join(lines)


def _classify_examples(model_dir: Path, out: Path, patients: int, seed: int) -> dict:
    """Classify the real pydicom cine and a phantom scan of an unseen patient with the edge runtime."""
    from pydicom.data import get_testdata_file

    from echoweave.edge import load
    from echoweave.edge.batch import classify_file
    from echoweave.train.data.layout_writers import write_video
    from echoweave.train.data.phantom import PhantomConfig, generate_recording, make_patient

    out.mkdir(parents=True, exist_ok=True)
    clf = load(model_dir, runtime="onnxruntime", precision="int8")
    cine = classify_file(clf, get_testdata_file("examples_ybr_color.dcm"))
    # A patient index past the training set: nobody the model has seen.
    views = ["APICAL_4C_LVRV", "APICAL_2C_LV", "PLAX_LV", "PSAX_AV", "PSAX_MV", "PSAX_PAPS"]
    recording, truth = generate_recording(views, 4.0, make_patient(patients + 7, seed), PhantomConfig(seed=seed))
    video = write_video(recording, out / "phantom_scan.mp4")
    scan = classify_file(clf, video, timeline_min_s=0.0)
    scan.timeline.plot(out / "phantom_scan_timeline.png", title="phantom scan (unseen patient)")
    scan.timeline.write_json(out / "phantom_scan_timeline.json")
    return {"runtime": clf.describe(), "cine": cine, "scan": scan, "truth": truth, "video": video, "out": out}


def _bench(model_dir: Path, out: Path) -> str:
    """A short benchmark of every runnable artifact (1 thread, 2 s per cell): perf.json, perf.md, charts."""
    from echoweave.benchmarks.harness import BenchConfig, run_bench, write_json
    from echoweave.benchmarks.report import write_report

    perf = run_bench(BenchConfig(str(model_dir), threads=[1], seconds=2.0, load_repeats=1, memory=False))
    write_json(out / "perf.json", perf)
    paths = write_report(perf, out)
    body = Path(paths["markdown"]).read_text().split("\n", 1)[-1]  # drop its title line
    charts = ", ".join(f"`{p}`" for k, p in paths.items() if k != "markdown")
    return (f"\n## Benchmark of the demo artifacts (`{out / 'perf.json'}`; charts {charts})\n"
            "Short cells (2 s, 1 thread) on whatever else this machine is doing: a smoke run of the harness. "
            "The full-size ResNet-50 numbers come from the documented `echoweave bench` command in the README.\n"
            + body)


def _export_report(exported) -> str:
    """The export section: artifact sizes, skipped combinations, and the parity report itself."""
    lines = ["## Export (`%s`)" % exported.folder, "", "| artifact | format | precision | bytes |", "|---|---|---|---|"]
    for a in exported.manifest["artifacts"]:
        lines.append(f"| {a['id']} | {a['format']} | {a['precision']} | {sum(f['bytes'] for f in a['files']):,} |")
    lines += [f"| {s['format']} {s['precision']} | skipped: {s['reason']} | | |" for s in exported.skipped]
    parity = (exported.folder / "parity.md").read_text().split("\n", 1)[-1]  # drop its title line
    lines += ["", "### Parity with eager PyTorch (held-out clips)", parity, "",
              f"Model card: `{exported.folder / 'MODEL_CARD.md'}`.", ""]
    return "\n".join(lines)


def _classify_report(c: dict) -> str:
    cine, scan = c["cine"], c["scan"]
    rt = c["runtime"]
    lines = [f"## Edge runtime (torch-free `echoweave.edge`: {rt.get('runtime')} {rt.get('precision', '')})", ""]
    if cine.prediction is not None:
        p = cine.prediction
        lines.append(f"- pydicom's real apical cine (`examples_ybr_color.dcm`, {cine.frames} frames): predicted "
                     f"**{p.view}** (confidence {p.confidence:.2f}{', UNCERTAIN' if p.uncertain else ''}). "
                     "The model never saw a real echo: this shows the reading, masking and runtime path, not accuracy.")
    else:
        lines.append(f"- pydicom cine: error {cine.error}")
    tl = scan.timeline
    lines += [f"- Phantom scan of an unseen patient (`{c['video']}`, {scan.duration_s:.1f} s, "
              f"{len(c['truth'])} views of 4 s): {len(tl.segments)} segments found, "
              f"{tl.stats['transitions']} transitions; timeline `{c['out'] / 'phantom_scan_timeline.png'}`.", "",
              "| true view | true span (s) |", "|---|---|"]
    lines += [f"| {t['view']} | {t['start_s']:.1f}-{t['end_s']:.1f} |" for t in c["truth"]]
    lines += ["", "| found view | span (s) | mean confidence |", "|---|---|---|"]
    lines += [f"| {s.view} | {s.start_s:.1f}-{s.end_s:.1f} | {s.mean_confidence:.2f} |" for s in tl.segments]
    return "\n".join(lines) + "\n"
