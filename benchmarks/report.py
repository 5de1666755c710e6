"""perf.md (a table a person reads) and PNG charts from a perf.json.

    write_report(perf, "bench_out/")   # perf.md, latency.png, stream_cdf.png

* ``latency.png``: median latency per cell (bar) with p90/p99 whiskers, one panel per mode, the
  real-time budget drawn as a horizontal line (one frame period per frame in stream mode, T
  frame periods per window in window mode).
* ``stream_cdf.png``: the cumulative distribution of per-frame latency of every stream cell, with
  the frame budget as a vertical line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from echoweave.edge.atomic import atomic_path, write_text_atomic


def _f(x, fmt="{:.2f}", none="–"):
    return none if x is None else fmt.format(x)


def _pct(x):
    return _f(x, "{:.0%}")


def perf_markdown(perf: dict) -> str:
    """The human report of one run."""
    host, cfg = perf["host"], perf["config"]
    peak = host["peak"]
    dev = (perf["target"].get("device") or {})
    lines = [f"# Latency of `{perf['model_id']}`", ""]
    if perf["target"]["kind"] == "android":
        lines += [f"Device: **{dev.get('model', '?')}** (SoC {dev.get('soc', '?')}, Android {dev.get('android', '?')}, "
                  f"ABI {dev.get('abi', '?')}); driven from a host with git {host.get('git_commit')}.", ""]
    else:
        lines += [f"Host: **{host['cpu_model']}**, {host['physical_cores']} cores ({host['logical_cpus']} logical), "
                  f"{host['clock_ghz']} GHz ({host.get('clock_source', '')}), {host['os']}, Python {host['python']}; "
                  f"git {host.get('git_commit')}.",
                  f"Load average at start {host.get('load_average_start')}, at end {host.get('load_average_end')} "
                  "(a shared machine inflates every number alike; cells are interleaved).", "",
                  f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(host['versions'].items()))}.", ""]
    lines += [f"Input: {cfg['input']}. {cfg['seconds']} s per cell, {cfg.get('interleave', '')}; fps {cfg['fps']} "
              f"(budget {1000 / cfg['fps']:.1f} ms per frame in stream mode, {cfg.get('frames_per_window', 4)} frame "
              "periods per window in window mode). Verdict on p99.", ""]
    eager = perf["eager"]
    lines += [f"Baseline: eager PyTorch fp32 — {eager['weights'] if eager['available'] else 'unavailable: ' + eager['reason']}.", ""]
    lines += ["| cell | artifact | load ms | first ms | N | mean | median | p90 | p99 | min | max | std | trim. mean "
              "| RSS peak MB | size MB | verdict | headroom (p99) | fps (p99) | × eager | GMAC/s | % peak | % GEMM |",
              "|" + "---|" * 22]
    for c in perf["cells"]:
        lat, rt = c["latency_ms"], c["realtime"]
        size = None if c["artifact_bytes"] is None else c["artifact_bytes"] / 1e6
        lines.append(
            f"| {c['id']} | {c['artifact']} | {_f(c['load_ms']['median'], '{:.1f}')} | {_f(c['first_inference_ms'])} "
            f"| {lat['n']} | {_f(lat['mean'])} | {_f(lat['median'])} | {_f(lat['p90'])} | {_f(lat['p99'])} "
            f"| {_f(lat['min'])} | {_f(lat['max'])} | {_f(lat['std'])} | {_f(lat['trimmed_mean'])} "
            f"| {_f(c['peak_rss_mb'], '{:.0f}')} | {_f(size)} | {rt['verdict']} | {_f(rt['headroom_p99'])} "
            f"| {_f(rt['sustainable_fps_p99'], '{:.1f}')} | {_f(c['speedup_vs_eager'])} | {_f(c['achieved_gmacs'], '{:.1f}')} "
            f"| {_pct(c['fraction_of_peak'])} | {_pct(c['fraction_of_gemm'])} |")
    lines += ["", "Latencies in ms. Window mode: one call = the exported `forward` on one preprocessed T-frame window. "
              "Stream mode: one call = `StreamingClassifier.push` of one uint8 frame, preprocessing included. "
              "std is the sample std (ddof 1); trimmed mean drops 10 % at each end; percentiles interpolate linearly. "
              "RSS peak: a fresh process that loads the artifact and runs a few calls (Python and runtime included).", ""]
    split = [c for c in perf["cells"] if c.get("stream_split_ms")]
    if split:
        parts = ("decode_convert", "sector", "resize", "model", "head", "preprocess", "other")
        lines += ["## Where a streamed frame's time goes", "",
                  "| stream cell | " + " | ".join(parts) + " | push median |", "|" + "---|" * (len(parts) + 2)]
        for c in split:
            s = c["stream_split_ms"]
            lines.append(f"| {c['id']} | " + " | ".join(_f(s.get(p), "{:.3f}") for p in parts)
                         + f" | {_f(c['latency_ms']['median'], '{:.3f}')} |")
        lines += ["", f"Per-frame medians in ms, each part timed separately after the run on frames "
                      f"{'x'.join(map(str, split[0]['stream_split_ms']['frame_shape']))} "
                      "(decode_convert: grey conversion or copy of a decoded frame; resize: float scaling, antialiased "
                      "resize and centre crop; model: embed_frame, or the whole forward without the streaming split; "
                      "head: classify_window; preprocess = the first three; other = push median minus the parts).", ""]
    lines += ["## Hardware limit", "", f"Theoretical peak: {peak.get('explanation')}.", ""]
    if perf["macs"]:
        m = perf["macs"]
        calls = ", ".join(f"{k} {v / 1e9:.4g} G" for k, v in m.items() if k not in ("per_frame", "source"))
        lines += [f"MACs per call ({m.get('source')}): {calls}, per streamed frame {m['per_frame'] / 1e9:.3f} G"
                  + ("" if "embed_frame" in m else " (no streaming split: a whole window per frame)") + ".", ""]
    if perf["gemm"]:
        lines += ["| GEMM (same runtime, same run) | threads | m×k×n | median ms | GMAC/s |", "|---|---|---|---|---|"]
        for g in perf["gemm"]:
            lines.append(f"| {g['runtime']} {g['precision']} | {g['threads']} | {g['m']}×{g['k']}×{g['n']} "
                         f"| {g['median_ms']:.3f} | {g['gmacs']:.1f} |")
        lines.append("")
    lines += ["% peak = achieved GMAC/s ÷ theoretical peak for min(threads, cores) cores at the cell's precision; "
              "% GEMM = ÷ the GEMM rate of the same runtime, precision and threads.", ""]
    deleg = [c for c in perf["cells"] if c.get("delegation")]
    if deleg:
        lines += ["## Delegation (from the manifest)", ""]
        for c in {c["artifact"]: c for c in deleg}.values():
            shares = ", ".join(f"{k} {v:.0%}" for k, v in c["delegation"]["delegated_share"].items() if v is not None)
            lines.append(f"- `{c['artifact']}`: nodes in the XNNPACK delegate: {shares}")
        lines.append("")
    threads = sorted({(c["runtime"], c["threads_control"]) for c in perf["cells"]})
    lines += ["## Threads", ""] + [f"- {r}: {t}" for r, t in threads] + [""]
    if perf["skipped"]:
        lines += ["## Skipped", ""] + [f"- {s.get('runtime', '')} {s.get('precision', '')}: {s['reason']}"
                                       for s in perf["skipped"]] + [""]
    if perf.get("soak"):
        s = perf["soak"]
        lines += ["## Soak", "", f"{s['minutes']:.2f} min, {s['frames']} frames of `{s['cell']}`: median first "
                  f"{s['median_first_ms']:.2f} ms vs last {s['median_last_ms']:.2f} ms (×{s['drift_ratio']:.3f}); "
                  f"trend {s['trend_ms_per_min']:+.3f} ms/min; RSS {s['rss_start_mb']:.0f} → {s['rss_end_mb']:.0f} MB "
                  f"({s['rss_growth_mb']:+.1f} MB).", ""]
    if perf["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in perf["notes"]] + [""]
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def latency_chart(perf: dict, path: str | Path) -> Path | None:
    """Median bars with p90/p99 whiskers per cell, one panel per mode, budget line drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("window", "stream") if any(c["mode"] == m for c in perf["cells"])]
    if not modes:
        return None
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        cells = [c for c in perf["cells"] if c["mode"] == mode]
        med = np.array([c["latency_ms"]["median"] if c["latency_ms"]["median"] is not None
                        else c["latency_ms"]["mean"] for c in cells])
        x = np.arange(len(cells))
        colors = ["#888888" if c["runtime"] == "eager" else ("#1f77b4" if c["precision"] != "int8" else "#2ca02c")
                  for c in cells]
        ax.bar(x, med, color=colors)
        for key, marker in (("p90", "_"), ("p99", "x")):
            ys = [c["latency_ms"][key] for c in cells]
            ax.scatter([xi for xi, y in zip(x, ys) if y is not None], [y for y in ys if y is not None],
                       marker=marker, color="black", zorder=3, label=key)
        budget = cells[0]["realtime"]["budget_ms"]
        ax.axhline(budget, color="red", linestyle="--", label=f"real-time budget {budget:.1f} ms")
        ax.set_xticks(x, [c["id"].replace(f"-{mode}", "") for c in cells], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("latency per call (ms)")
        ax.set_title(f"{mode} mode: median (bar), p90 (-), p99 (x)")
        ax.legend(fontsize=8)
    path = Path(path)
    _save(fig, path)
    plt.close(fig)
    return path


def stream_cdf_chart(perf: dict, path: str | Path) -> Path | None:
    """Per-frame latency CDF of the stream cells with the frame budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in perf["cells"] if c["mode"] == "stream" and c["samples_ms"]]
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in cells:
        xs = np.sort(c["samples_ms"])
        ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=c["id"].replace("-stream", ""),
                linestyle=":" if c["runtime"] == "eager" else "-")
    budget = cells[0]["realtime"]["budget_ms"]
    ax.axvline(budget, color="red", linestyle="--", label=f"frame budget {budget:.1f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("per-frame latency (ms, log)")
    ax.set_ylabel("fraction of frames")
    ax.set_title("stream mode: per-frame latency CDF")
    ax.legend(fontsize=7)
    path = Path(path)
    _save(fig, path)
    plt.close(fig)
    return path


def write_report(perf: dict, out: str | Path) -> dict[str, Path]:
    """Write ``perf.md`` and the charts into ``out``; returns their paths (charts may be missing
    if matplotlib is not installed: the markdown says so)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    md = perf_markdown(perf)
    try:
        for name, fn in (("latency", latency_chart), ("stream_cdf", stream_cdf_chart)):
            p = fn(perf, out / f"{name}.png")
            if p:
                paths[name] = p
                md += f"\n![{name}]({p.name})\n"
    except ImportError:
        md += "\n(charts skipped: matplotlib is not installed)\n"
    write_text_atomic(out / "perf.md", md)
    paths["markdown"] = out / "perf.md"
    return paths
