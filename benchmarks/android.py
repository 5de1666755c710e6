"""``echoweave bench --target android``: time artifacts on a phone with the runtimes' own tools.

    pushes   adb push <artifact files> <runner binaries> /data/local/tmp/echoweave/
    device   adb shell getprop ro.product.model | ro.soc.model | ro.board.platform | ...
    ExecuTorch  executor_runner --model_path=M.pte --method_name=forward --num_executions=W+N --cpu_threads=T
    LiteRT      benchmark_model --graph=M.tflite --signature_to_run_for=forward --num_threads=T
                                --warmup_runs=W --num_runs=N

The binaries are the user's (built from the ExecuTorch / TensorFlow-LiteRT sources for
arm64-v8a); pass their local paths. Output formats parsed, and where they come from:

* ExecuTorch ``examples/portable/executor_runner/executor_runner.cpp`` (ExecuTorch main branch,
  2025/26) logs through ``ET_LOG`` whose POSIX PAL prefixes ``"I 00:00:00.123456
  executorch:executor_runner.cpp:LINE] "`` and prints ``Model loaded in %f ms.``,
  ``Iteration %u of %u: %f ms`` per execution and ``Model executed successfully %u time(s) in
  %f ms.``; it has no warm-up flag, so the harness runs W+N executions and drops the first W.
  Older builds print only ``Model executed successfully.`` / the total line without per-iteration
  lines: then only the mean is known and the other statistics stay null. Other runners (the
  XNNPACK/QNN example runners, 2024/25) print ``%d inference took %f ms, avg %f ms``. A Release
  build compiles ``ET_LOG`` out and prints no timing at all: that is an error telling to rebuild
  with ``-DEXECUTORCH_ENABLE_LOGGING=ON``, never a cell with empty numbers. ``--cpu_threads`` exists
  in builds with ``ET_USE_THREADPOOL``. Not verified here against a real device (none attached).
* LiteRT ``tensorflow/lite/tools/benchmark`` (README and its logs) prints
  ``count=N first=F curr=C min=A max=B avg=M std=S`` (newer builds add ``p5= median= p95=``;
  values in microseconds, possibly ``1.24e+06`` notation) once for the warm-up runs and once for
  the measured runs, then ``Inference timings in us: Init: I, First inference: F, Warmup (avg): W,
  Inference (avg): M``, memory lines (``Memory footprint delta from the start of the tool (MB):
  init=.. overall=..``, ``Peak memory footprint (MB): init=.. overall=..`` or ``Overall peak
  memory footprint (MB) via periodic monitoring: X``), and the delegate line ``Replacing N out of
  M node(s) with delegate (...)``. It reports no p90/p99: those stay null. The parsers keep any
  ``INFO: `` / logcat prefix. A failed run (``ERROR: Failed to apply GPU delegate.``,
  ``ERROR: Benchmarking failed.``) is an error carrying the tool's own first error line.
  Examples written from the tools' format strings: ``tests/fixtures/bench/``.

iOS is not driven from here: open the ``.mlpackage`` in Xcode and use its Performance report
(README "Benchmarks").
"""
from __future__ import annotations

import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from echoweave.benchmarks.stats import realtime_verdict

PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer", "soc": "ro.soc.model",
         "soc_manufacturer": "ro.soc.manufacturer", "board": "ro.board.platform",
         "android": "ro.build.version.release", "sdk": "ro.build.version.sdk", "abi": "ro.product.cpu.abi"}
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


@dataclass
class AdbTarget:
    """Where and how to reach the phone.

    Attributes:
        adb: the adb executable.
        serial: device serial (``adb -s``); None = the only device.
        remote_dir: working folder on the device.
    """

    adb: str = "adb"
    serial: str | None = None
    remote_dir: str = "/data/local/tmp/echoweave"

    def cmd(self, *args: str) -> list[str]:
        """``adb [-s SERIAL] ARGS...`` as an argument list."""
        return [self.adb, *(["-s", self.serial] if self.serial else []), *args]

    def remote(self, local: str | Path) -> str:
        """The device path a local file is pushed to."""
        return f"{self.remote_dir}/{Path(local).name}"

    def push(self, local: str | Path) -> list[str]:
        return self.cmd("push", str(local), self.remote(local))

    def shell(self, *args: str) -> list[str]:
        return self.cmd("shell", *args)

    def getprop(self, prop: str) -> list[str]:
        return self.shell("getprop", prop)


def setup_commands(target: AdbTarget, files: list[str | Path], binaries: list[str | Path]) -> list[list[str]]:
    """mkdir, pushes of artifact files and runner binaries, chmod +x of the binaries."""
    cmds = [target.shell("mkdir", "-p", target.remote_dir)]
    cmds += [target.push(f) for f in [*files, *binaries]]
    cmds += [target.shell("chmod", "+x", target.remote(b)) for b in binaries]
    return cmds


def executor_runner_command(target: AdbTarget, runner: str | Path, pte: str | Path, method: str, warmup: int,
                            runs: int, threads: int) -> list[str]:
    """``adb shell <runner> --model_path= --method_name= --num_executions=W+N --cpu_threads=T``."""
    return target.shell(target.remote(runner), f"--model_path={target.remote(pte)}", f"--method_name={method}",
                        f"--num_executions={warmup + runs}", f"--cpu_threads={threads}")


def benchmark_model_command(target: AdbTarget, binary: str | Path, tflite: str | Path, signature: str, warmup: int,
                            runs: int, threads: int) -> list[str]:
    """``adb shell <benchmark_model> --graph= --signature_to_run_for= --num_threads= --warmup_runs= --num_runs=``."""
    return target.shell(target.remote(binary), f"--graph={target.remote(tflite)}",
                        f"--signature_to_run_for={signature}", f"--num_threads={threads}",
                        f"--warmup_runs={warmup}", f"--num_runs={runs}", "--report_peak_memory_footprint=true")


# ---- parsers --------------------------------------------------------------------------------
def parse_executor_runner(text: str, warmup: int = 0) -> dict:
    """Facts from executor_runner's log (see the module docstring for the format).

    Returns:
        ``{"load_ms", "method", "threads", "iterations_ms" (all), "samples_ms" (after dropping
        ``warmup``), "first_ms", "executions", "total_ms", "mean_ms", "ok"}``; missing facts None.
    """
    def find(pattern, cast=float):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else None

    iters = [(int(i), float(ms)) for i, ms in re.findall(r"Iteration (\d+) of \d+: " + _NUM + " ms", text)]
    iters = [ms for _, ms in sorted(iters)]
    total = (re.search(r"Model executed successfully (\d+) time\(s\) in " + _NUM + " ms", text)
             or re.search(r"(\d+) inference took " + _NUM + r" ms, avg " + _NUM + " ms", text))
    executions = int(total.group(1)) if total else (len(iters) or None)
    total_ms = float(total.group(2)) if total else None
    samples = iters[warmup:] if iters else []
    mean = (sum(samples) / len(samples)) if samples else (total_ms / executions if total_ms and executions else None)
    return {"load_ms": find(r"Model loaded in " + _NUM + " ms"), "method": find(r"Using method (\S+)", str),
            "threads": find(r"Resetting threadpool with num threads = (\d+)", int), "iterations_ms": iters,
            "samples_ms": samples, "first_ms": iters[0] if iters else None, "executions": executions,
            "total_ms": total_ms, "mean_ms": mean,
            "ok": bool(total) or "Model executed successfully" in text}


class DeviceToolError(Exception):
    """A device tool ran but gave no usable timing; the message says why in one line."""


def tool_error_line(text: str) -> str | None:
    """The first error line a runtime tool printed (``ERROR: ...``, ``E ... executorch:...]``,
    ``Failed to apply ... delegate``), prefixes stripped; None if there is none."""
    lines = [ln.strip() for ln in text.splitlines()]
    delegate = [ln for ln in lines if re.search(r"Failed to apply .* delegate", ln)]
    if delegate:  # the cause, rather than the lines listing unsupported ops before it
        return re.sub(r"^\w+:\s*", "", delegate[0])
    for line in lines:
        m = re.match(r"^(?:ERROR:\s*|E \d\d:\d\d:\d\d\.\d+ executorch:\S+\] )(.*)", line)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return next((re.sub(r"^\w+:\s*", "", ln) for ln in lines if "Benchmarking failed" in ln), None)


def _kv(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=" + _NUM, line)}


def parse_benchmark_model(text: str) -> dict:
    """Facts from LiteRT benchmark_model's output (microseconds converted to ms).

    Returns:
        ``{"warmup": {...}, "runs": {count, first, curr, min, max, avg, std[, p5, median, p95]} (ms),
        "init_ms", "first_inference_ms", "warmup_avg_ms", "inference_avg_ms", "model_size_mb",
        "memory_mb" {...}, "delegated_nodes", "total_nodes"}``.
    """
    stat_lines = [_kv(ln) for ln in text.splitlines() if re.search(r"\bcount=\d+", ln)]
    to_ms = [{k: (v if k == "count" else v / 1000.0) for k, v in d.items()} for d in stat_lines]
    out = {"warmup": to_ms[0] if len(to_ms) > 1 else None, "runs": to_ms[-1] if to_ms else None}
    m = re.search(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM +
                  r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM, text)
    keys = ("init_ms", "first_inference_ms", "warmup_avg_ms", "inference_avg_ms")
    out.update({k: float(m.group(i + 1)) / 1000.0 if m else None for i, k in enumerate(keys)})
    size = re.search(r"The input model file size \(MB\): " + _NUM, text)
    out["model_size_mb"] = float(size.group(1)) if size else None
    mem = {}
    for label, pattern in (("delta", r"Memory footprint delta from the start of the tool \(MB\): init=" + _NUM
                            + " overall=" + _NUM), ("peak", r"Peak memory footprint \(MB\): init=" + _NUM
                                                    + " overall=" + _NUM)):
        mm = re.search(pattern, text)
        if mm:
            mem[label] = {"init": float(mm.group(1)), "overall": float(mm.group(2))}
    mm = re.search(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUM, text)
    if mm:
        mem["periodic_peak"] = float(mm.group(1))
    out["memory_mb"] = mem
    d = re.search(r"Replacing (\d+) out of (\d+) node\(s\) with delegate", text)
    out["delegated_nodes"], out["total_nodes"] = (int(d.group(1)), int(d.group(2))) if d else (None, None)
    failed = re.search(r"Failed to apply .* delegate|Benchmarking failed", text)
    out["error"] = (tool_error_line(text) or failed.group(0)) if failed else None
    return out


# ---- perf.json cells ------------------------------------------------------------------------
def _stats_from_samples(samples: list[float]) -> dict:
    from echoweave.benchmarks.stats import latency_stats

    return latency_stats(samples)


def _stats_from_aggregates(runs: dict) -> dict:
    """benchmark_model aggregates -> latency_ms (p90/p99/trimmed mean are not reported: null)."""
    return {"n": int(runs["count"]), "mean": runs["avg"], "median": runs.get("median"), "p90": None, "p99": None,
            "min": runs["min"], "max": runs["max"], "std": runs.get("std"), "trimmed_mean": None}


def device_cell(runtime: str, tool: str, artifact: dict, precision: str, threads: int, mode: str, stats: dict,
                samples: list[float], load_ms: float | None, first_ms: float | None, warmup: int, fps: float,
                frames: int, notes: list[str], peak_rss_mb: float | None = None,
                delegation: dict | None = None) -> dict:
    """A perf.json cell from a device tool's numbers (same schema as host cells)."""
    return {"id": f"{runtime}-{precision}-t{threads}-{mode}", "runtime": runtime, "runtime_version": tool,
            "artifact": artifact["id"], "precision": precision, "threads": threads,
            "threads_control": f"{tool} thread flag", "mode": mode,
            "load_ms": {"median": load_ms, "samples": [] if load_ms is None else [load_ms], "what": f"{tool} report"},
            "first_inference_ms": first_ms, "warmup": warmup, "latency_ms": stats,
            "samples_ms": [round(s, 4) for s in samples], "peak_rss_mb": peak_rss_mb, "rss_load_delta_mb": None,
            "artifact_bytes": sum(f.get("bytes", 0) for f in artifact["files"]
                                  if f["path"] in {m["file"] for m in artifact["methods"].values()}) or None,
            "delegation": delegation, "realtime": realtime_verdict(stats, mode, fps, frames),
            "speedup_vs_eager": None, "macs_per_call": None, "achieved_gmacs": None, "fraction_of_peak": None,
            "fraction_of_gemm": None, "notes": notes}


def stream_from_methods(embed: dict, head_mean: float) -> tuple[dict, list[float]]:
    """Per-frame stream estimate on a device: ``embed_frame`` latency + mean ``classify_window``.

    Location statistics shift by the head's mean; std stays the embedder's (the head is ~0.3 %
    of the MACs). Preprocessing is not included (the tools feed tensors)."""
    shifted = {k: (v + head_mean if k in ("mean", "median", "p90", "p99", "min", "max", "trimmed_mean")
                   and v is not None else v) for k, v in embed["stats"].items()}
    return shifted, [s + head_mean for s in embed["samples"]]


def run(cmd: list[str], timeout: float = 900.0) -> str:
    """Run one adb command; stdout+stderr text (executor_runner logs to stderr)."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        from echoweave.edge.errors import EchoweaveError

        text = done.stdout + done.stderr
        why = tool_error_line(text) or " ".join(text.strip()[-400:].split())
        raise EchoweaveError(f"{shlex.join(cmd)} failed (exit {done.returncode}): {why}")
    return done.stdout + done.stderr


def device_facts(target: AdbTarget, runner=run) -> dict:
    """getprop facts (model, SoC, board, Android version, ABI); empty strings become None."""
    return {k: (runner(target.getprop(p)).strip() or None) for k, p in PROPS.items()}


def _method_timing(target, runner, tool, binary, art_file, method, warmup, runs, threads) -> dict:
    if tool == "executor_runner":
        log = runner(executor_runner_command(target, binary, art_file, method, warmup, runs, threads))
        p = parse_executor_runner(log, warmup)
        if p["mean_ms"] is None:
            why = tool_error_line(log)
            raise DeviceToolError(f"executor_runner {art_file.name} {method}: " + (why or (
                "printed no timing; a Release build compiles its logging out: rebuild executor_runner with "
                "-DEXECUTORCH_ENABLE_LOGGING=ON (or a Debug build) to benchmark with it")))
        if p["samples_ms"]:
            stats = _stats_from_samples(p["samples_ms"])
        else:
            stats = {"n": p["executions"] or 1, "mean": p["mean_ms"], "median": None, "p90": None, "p99": None,
                     "min": p["mean_ms"], "max": p["mean_ms"], "std": None, "trimmed_mean": None}
        return {"stats": stats, "samples": p["samples_ms"], "load_ms": p["load_ms"], "first_ms": p["first_ms"],
                "peak": None, "delegation": None}
    p = parse_benchmark_model(runner(benchmark_model_command(target, binary, art_file, method, warmup, runs, threads)))
    if p["error"]:
        raise DeviceToolError(f"benchmark_model {art_file.name} {method} failed: {p['error']}")
    if not p["runs"]:
        raise DeviceToolError(f"benchmark_model printed no 'count=... avg=...' line for {art_file.name} {method}")
    mem = p["memory_mb"]
    peak = mem.get("periodic_peak") or (mem.get("peak") or {}).get("overall")
    deleg = None if p["delegated_nodes"] is None else {
        "source": "benchmark_model log", "delegated_nodes": p["delegated_nodes"], "total_nodes": p["total_nodes"]}
    return {"stats": _stats_from_aggregates(p["runs"]), "samples": [], "load_ms": p["init_ms"],
            "first_ms": p["first_inference_ms"], "peak": peak, "delegation": deleg}


def run_android(folder: str | Path, manifest: dict, target: AdbTarget, executor_runner: str | None,
                benchmark_model: str | None, threads: list[int], modes: list[str], warmup: int, runs: int,
                fps: float, precisions: list[str] | None = None, runner=run) -> tuple[list[dict], list[dict], dict]:
    """Push, run and parse every (artifact, threads, mode) the given binaries can time.

    Returns:
        ``(cells, skipped, device facts)``.
    """
    folder = Path(folder)
    tools = {"executorch": ("executor_runner", executor_runner), "litert": ("benchmark_model", benchmark_model)}
    cells, skipped = [], []
    device = device_facts(target, runner)
    for art in manifest["artifacts"]:
        if precisions and art["precision"] not in precisions:
            continue
        tool, binary = tools.get(art["format"], (None, None))
        if tool is None or not binary:
            skipped.append({"runtime": art["format"], "precision": art["precision"],
                            "reason": "no device tool for this format" if tool is None else
                            f"pass --{tool} PATH (a {tool} binary built for the phone)"})
            continue
        files = sorted({m["file"] for m in art["methods"].values()})
        for cmd in setup_commands(target, [folder / f for f in files], [binary]):
            runner(cmd)
        for t in threads:
            timing = {}
            for mode in modes:
                # A model without the streaming split streams by recomputing forward on each frame.
                per_frame = all(m in art["methods"] for m in ("embed_frame", "classify_window"))
                methods = ["embed_frame", "classify_window"] if mode == "stream" and per_frame else ["forward"]
                try:
                    for method in methods:
                        if method not in timing:
                            timing[method] = _method_timing(target, runner, tool, binary,
                                                            folder / art["methods"][method]["file"],
                                                            art["methods"][method].get("entry", method), warmup, runs, t)
                except DeviceToolError as exc:  # a failed cell is reported with the tool's reason, never empty
                    skipped.append({"runtime": art["format"], "precision": art["precision"], "threads": t,
                                    "mode": mode, "reason": f"failed: {exc}"})
                    continue
                notes = [f"{tool} on the device, inputs filled by the tool (no preprocessing)"]
                if methods == ["forward"]:
                    w = timing["forward"]
                    stats, samples = w["stats"], w["samples"]
                    if mode == "stream":
                        notes.append("stream = forward on the whole window per frame (no streaming split)")
                else:
                    w = timing["embed_frame"]
                    stats, samples = stream_from_methods(w, timing["classify_window"]["stats"]["mean"])
                    notes.append("stream = embed_frame samples + classify_window mean (separate runs)")
                cells.append(device_cell(art["format"], tool, art, art["precision"], t, mode, stats, samples,
                                         w["load_ms"], w["first_ms"], warmup, fps, int(manifest["frames"]), notes,
                                         w["peak"], w["delegation"]))
    return cells, skipped, device


def device_perf(folder, manifest: dict, cells: list[dict], skipped: list[dict], device: dict, cfg: dict) -> dict:
    """Wrap device cells into a perf.json dict (host = the machine that drove adb)."""
    from echoweave.benchmarks.hostinfo import host_info, load_average

    host = host_info()
    host["load_average_end"] = load_average()
    return {"schema_version": 1, "kind": "echoweave-perf", "model_id": manifest["model_id"], "artifact_dir": str(folder),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "target": {"kind": "android", "device": device}, "host": host, "config": cfg, "macs": None, "gemm": [],
            "eager": {"available": False, "reason": "no eager PyTorch on the device", "weights": None},
            "cells": cells, "skipped": skipped,
            "notes": ["device numbers come from the runtimes' own tools; the host section describes the machine "
                      "that drove adb, not the phone"]}
