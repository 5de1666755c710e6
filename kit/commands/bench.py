"""`echoweave bench`: latency, memory and size of exported artifacts on this host or a phone.

    echoweave bench artifacts/tfw_r50 --threads 1,2 --mode window,stream --seconds 20 --out bench_out
    echoweave bench artifacts/tfw_r50 --compare old/perf.json          # run, then ratios vs an old run
    echoweave bench new/perf.json --compare old/perf.json              # ratios only, no run
    echoweave bench artifacts/tfw_r50 --target android --executor_runner ./executor_runner \\
        --benchmark_model ./benchmark_model
    echoweave bench artifacts/tfw_r50 --soak 10                        # 10 min drift / RSS growth
    echoweave bench artifacts/tfw_r50 --peer_checkpoint runs/tfw_r50  # + peers: the toolchains' own recipes

Light module: the harness (and torch, where used) is imported inside the function.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from echoweave.edge.errors import EchoweaveError


def _split(value: str, name: str, cast=str) -> list:
    try:
        items = [cast(v.strip()) for v in str(value).split(",") if v.strip()]
    except ValueError as exc:
        raise EchoweaveError(f"--{name} {value!r}: {exc}") from exc
    if not items:
        raise EchoweaveError(f"--{name} is empty; give a comma-separated list")
    return items


def _summary(perf: dict) -> str:
    lines = [f"{'cell':<32} {'median':>9} {'p99':>9} {'budget':>7} {'headroom':>8} {'fps':>7} {'x eager':>7} "
             f"{'GMAC/s':>7} {'%peak':>6} verdict"]
    for c in perf["cells"]:
        lat, rt = c["latency_ms"], c["realtime"]

        def f(x, fmt):
            return format(x, fmt) if x is not None else "-"
        lines.append(f"{c['id']:<32} {f(lat['median'], '9.2f')} {f(lat['p99'], '9.2f')} {rt['budget_ms']:7.1f} "
                     f"{f(rt['headroom_p99'] or rt['headroom_median'], '8.2f')} "
                     f"{f(rt['sustainable_fps_p99'] or rt['sustainable_fps_median'], '7.1f')} "
                     f"{f(c['speedup_vs_eager'], '7.2f')} {f(c['achieved_gmacs'], '7.1f')} "
                     f"{f(c['fraction_of_peak'] and 100 * c['fraction_of_peak'], '6.1f')} {rt['verdict']}")
    return "\n".join(lines)


def bench(model: str, runtimes: str = "", precisions: str = "", threads: str = "1,2",
          mode: str = "window,stream", fps: float = 30.0, seconds: float = 20.0, out: str = "",
          clip: str = "", warmup: int = 5, eager: bool = True, gemm: bool = True, memory: bool = True,
          compare: str = "", soak: float = 0.0, target: Literal["host", "android"] = "host", adb: str = "adb", serial: str = "",
          executor_runner: str = "", benchmark_model: str = "", runs: int = 50, clock_ghz: float | None = None,
          fma_units: int = 2, peers: bool = True, peer_checkpoint: str = "", peer_methods: str = "") -> None:
    """Benchmark an exported model: per runtime, precision, thread count and mode, through echoweave.edge.

    Writes OUT/perf.json (schema-checked), OUT/perf.md and charts (latency per cell with the
    real-time budget; per-frame latency CDF in stream mode). Cells run interleaved; eager
    PyTorch fp32 is the baseline; achieved MAC rates are compared with the CPU's theoretical
    peak and the best GEMM rate of the same runtime measured in the same run.

    Args:
        model: An exported model folder, artifacts/<model_id> (or a perf.json, with --compare, to compare two runs).
        runtimes: Comma-separated runtimes (the --runtime choices of classify); default: all installed.
        precisions: Comma-separated precisions (fp32, fp16, int8); default: all in the manifest.
        threads: Comma-separated thread counts, one cell each.
        mode: window (one 4-frame window per call) and/or stream (one new uint8 frame per call, end to end).
        fps: Frame rate of the real-time budget (one frame period per frame, T per window).
        seconds: Timed seconds per cell.
        out: Output folder (default: bench_out/<model_id>).
        clip: A DICOM cine, video or frame folder to stream (default: a phantom recording; needed without torch).
        warmup: Untimed calls after the first inference.
        eager: Time the eager PyTorch fp32 baseline (needs torch).
        gemm: Measure each runtime's GEMM ceiling (needs torch and the converters).
        memory: Measure each cell's peak RSS in a fresh subprocess.
        compare: An older perf.json: print new/old ratios per cell.
        soak: Minutes to stream at full speed (first runtime/precision) to report latency drift and RSS growth.
        target: Where to run: host (this machine), or android (a phone over adb, with the runtimes' own
            benchmark binaries).
        adb: adb executable (android).
        serial: adb device serial (android; default: the only device).
        executor_runner: Local path of an ExecuTorch executor_runner built for the phone (android).
        benchmark_model: Local path of a LiteRT benchmark_model built for the phone (android).
        runs: Measured runs per method on the phone (android).
        clock_ghz: Override the CPU clock used for the theoretical peak.
        fma_units: Vector FMA units per core for the theoretical peak (2 on most x86 server cores).
        peers: Also build (or take from the cache) the artifact each toolchain's own documented recipe makes
            of the same checkpoint, time it interleaved with the kit's and compare accuracy on held-out windows
            (host only; needs the checkpoint: --peer_checkpoint or the manifest's source_checkpoint). Writes
            OUT/peers.json and OUT/peers.md; a line per peer the kit is slower or less accurate than.
        peer_checkpoint: The checkpoint the artifacts were exported from (default: the manifest's source_checkpoint).
        peer_methods: Comma-separated methods the peers are built from: embed_frame (per frame) and/or forward;
            default: embed_frame when the model streams per frame, else forward (a window-only model).
    """
    from echoweave.benchmarks.compare import compare_perf, compare_table, read_perf
    from echoweave.benchmarks.harness import stream_split_table, write_json
    from echoweave.benchmarks.report import write_report

    src = Path(model)
    if src.is_file() and src.suffix == ".json":  # compare two existing runs
        if not compare:
            raise EchoweaveError(f"{src}: a perf.json needs --compare OLD.json (or pass an artifacts folder)")
        old, new = read_perf(compare), read_perf(src)
        print(compare_table(compare_perf(old, new), old, new))
        return
    if target not in ("host", "android"):
        raise EchoweaveError(f"--target must be host or android, got {target!r}")
    from echoweave.edge.manifest import read_manifest

    manifest = read_manifest(src)
    out_dir = Path(out or Path("bench_out") / manifest["model_id"])
    thread_list = _split(threads, "threads", int)
    modes = _split(mode, "mode")
    if target == "android":
        from echoweave.benchmarks.android import AdbTarget, device_perf, run_android

        cells, skipped, facts = run_android(src, manifest, AdbTarget(adb, serial or None), executor_runner or None,
                                            benchmark_model or None, thread_list, modes, warmup, runs, fps,
                                            _split(precisions, "precisions") if precisions else None)
        cfg = {"runtimes": sorted({c["runtime"] for c in cells}), "precisions": sorted({c["precision"] for c in cells}),
               "threads": thread_list, "modes": modes, "fps": fps, "seconds": 0.0, "warmup": warmup,
               "input": "tensors filled by the device tool", "runs": runs}
        from echoweave.benchmarks.schema import validate_perf

        perf = validate_perf(device_perf(src, manifest, cells, skipped, facts, cfg))
    else:
        from echoweave.benchmarks.harness import BenchConfig, run_bench

        cfg = BenchConfig(str(src), runtimes=_split(runtimes, "runtimes") if runtimes else None,
                          precisions=_split(precisions, "precisions") if precisions else None, threads=thread_list,
                          modes=modes, fps=fps, seconds=seconds, warmup=warmup, clip=clip or None, eager=eager,
                          gemm=gemm, memory=memory, clock_ghz=clock_ghz, fma_units=fma_units)
        perf = run_bench(cfg)
        if soak > 0:
            perf["soak"] = _soak(cfg, manifest, soak)
        if peers:
            methods = _split(peer_methods, "peer_methods") if peer_methods else default_peer_methods(manifest)
            perf["peers"] = _peers(src, manifest, cfg, peer_checkpoint, methods, out_dir)
    write_json(out_dir / "perf.json", perf)
    paths = write_report(perf, out_dir)
    print(_summary(perf))
    if stream_split_table(perf):
        print("\n" + stream_split_table(perf))
    for note in perf["notes"]:
        print(f"note: {note}")
    print(f"\nwrote {out_dir / 'perf.json'}, {paths['markdown']}" + "".join(
        f", {p}" for k, p in paths.items() if k != "markdown"))
    if perf.get("peers"):
        from echoweave.benchmarks.peers import peers_table

        print("\n" + peers_table(perf["peers"]))
    if compare:
        old = read_perf(compare)
        print("\n" + compare_table(compare_perf(old, perf), old, perf))


def default_peer_methods(manifest: dict) -> list[str]:
    """The method peers are built from when none is asked for: the per-frame ``embed_frame`` of a
    model that streams frame by frame (what a stream runs), else the window ``forward``."""
    return ["embed_frame"] if "embed_frame" in manifest.get("methods", []) else ["forward"]


def _peers(src: Path, manifest: dict, cfg, checkpoint: str, methods: list[str], out_dir: Path) -> dict | None:
    """Peer comparison (`echoweave.benchmarks.peers`) at the bench's threads and seconds; None, with a
    printed note, when no checkpoint is known (the peers are built from it)."""
    from echoweave.benchmarks.peers import PeerConfig, resolve_checkpoint, run_peers, write_peers

    if resolve_checkpoint(manifest, checkpoint or None) is None:
        if checkpoint:
            raise EchoweaveError(f"--peer_checkpoint {checkpoint}: no checkpoint there")
        print("note: peers skipped: the manifest's source_checkpoint is not here (pass --peer_checkpoint, or --no-peers)")
        return None
    report = run_peers(PeerConfig(str(src), checkpoint=checkpoint or None, runtimes=cfg.runtimes,
                                  precisions=cfg.precisions, methods=methods, threads=cfg.threads,
                                  seconds=cfg.seconds, chunk_seconds=cfg.chunk_seconds, warmup=cfg.warmup,
                                  progress=cfg.progress))
    write_peers(report, out_dir)
    return report


def _soak(cfg, manifest: dict, minutes: float) -> dict:
    """Soak the first planned (runtime, precision) at the largest thread count."""
    import echoweave.edge as ew
    from echoweave.benchmarks.harness import load_recording, plan_cells
    from echoweave.benchmarks.soak import soak
    from echoweave.benchmarks.threads import apply_threads

    cells, _ = plan_cells(manifest, cfg)
    if not cells:
        raise EchoweaveError(f"{cfg.artifact_dir}: no runtime/artifact to soak")
    first = cells[0]
    threads = max(cfg.threads)
    apply_threads(first.runtime, threads)
    clf = ew.load(cfg.artifact_dir, runtime=first.runtime, precision=first.precision, threads=threads)
    frames, _ = load_recording(cfg, manifest)
    try:
        return soak(clf, frames, minutes, cfg.fps, cfg.progress)
    finally:
        clf.close()
