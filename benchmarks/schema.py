"""The ``perf.json`` schema and its validator (hand-written: no jsonschema dependency).

One perf.json per bench run (host or device)::

    {
      "schema_version": 1, "kind": "echoweave-perf",
      "model_id": "tfw_r50", "artifact_dir": "...", "created_utc": "...",
      "target": {"kind": "host" | "android", "device": {...getprop facts} | null},
      "host": {cpu_model, logical_cpus, physical_cores, isa_flags, clock_ghz, peak {...},
               os, python, versions {package: version}, git_commit, load_average_start/end},
      "config": {runtimes, precisions, threads, modes, fps, seconds, warmup, input, interleave},
      "macs": {forward[, embed_frame, classify_window], per_frame, source} | null,  # the declared methods
      "gemm": [{runtime, precision, threads, m, k, n, median_ms, gmacs}],
      "eager": {available, reason, weights},
      "cells": [{id, runtime, runtime_version, artifact, precision, threads, threads_control, mode,
                 load_ms {median, samples}, first_inference_ms, warmup, latency_ms {n, mean, median,
                 p90, p99, min, max, std, trimmed_mean}, samples_ms [...], peak_rss_mb,
                 rss_load_delta_mb, artifact_bytes, delegation, realtime {...}, speedup_vs_eager,
                 macs_per_call, achieved_gmacs, fraction_of_peak, fraction_of_gemm, notes}],
      "skipped": [{runtime, precision, mode?, threads?, reason}],
      "soak": {...} (optional), "notes": [...]
    }

Statistics a tool does not report (e.g. p99 from LiteRT's ``benchmark_model``) are ``null``,
never made up.
"""
from __future__ import annotations

from typing import Any

from echoweave.edge.errors import EchoweaveError

SCHEMA_VERSION = 1
NUM = (int, float)
OPT_NUM = (int, float, type(None))
OPT_STR = (str, type(None))

TOP = {"schema_version": int, "kind": str, "model_id": str, "artifact_dir": str, "created_utc": str,
       "target": dict, "host": dict, "config": dict, "macs": (dict, type(None)), "gemm": list, "eager": dict,
       "cells": list, "skipped": list, "notes": list}
HOST = {"cpu_model": str, "os": str, "python": str, "versions": dict, "git_commit": OPT_STR, "peak": dict,
        "physical_cores": int, "logical_cpus": int, "isa_flags": list, "clock_ghz": OPT_NUM,
        "load_average_start": (list, type(None)), "load_average_end": (list, type(None))}
CONFIG = {"runtimes": list, "precisions": list, "threads": list, "modes": list, "fps": NUM, "seconds": NUM,
          "warmup": int, "input": str}
CELL = {"id": str, "runtime": str, "runtime_version": str, "artifact": str, "precision": str, "threads": int,
        "threads_control": str, "mode": str, "load_ms": dict, "first_inference_ms": OPT_NUM, "warmup": int,
        "latency_ms": dict, "samples_ms": list, "peak_rss_mb": OPT_NUM, "rss_load_delta_mb": OPT_NUM,
        "artifact_bytes": (int, type(None)), "delegation": (dict, type(None)), "realtime": dict,
        "speedup_vs_eager": OPT_NUM, "macs_per_call": (int, type(None)), "achieved_gmacs": OPT_NUM,
        "fraction_of_peak": OPT_NUM, "fraction_of_gemm": OPT_NUM, "notes": list}
LATENCY = {"n": int, "mean": NUM, "median": OPT_NUM, "p90": OPT_NUM, "p99": OPT_NUM, "min": NUM, "max": NUM,
           "std": OPT_NUM, "trimmed_mean": OPT_NUM}
REALTIME = {"budget_ms": NUM, "headroom_median": NUM, "headroom_p99": OPT_NUM, "sustainable_fps_median": NUM,
            "sustainable_fps_p99": OPT_NUM, "verdict": str}
GEMM = {"runtime": str, "precision": str, "threads": int, "m": int, "k": int, "n": int, "median_ms": NUM,
        "gmacs": NUM}
MODES = ("window", "stream")
VERDICTS = ("real-time", "real-time at the median only", "too slow")


class PerfSchemaError(EchoweaveError, ValueError):
    """A perf.json does not follow the schema (the message names the field)."""


def _check(obj: Any, spec: dict, where: str) -> None:
    if not isinstance(obj, dict):
        raise PerfSchemaError(f"{where}: expected an object, got {type(obj).__name__}")
    for key, types in spec.items():
        if key not in obj:
            raise PerfSchemaError(f"{where}: missing {key!r}")
        value = obj[key]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise PerfSchemaError(f"{where}.{key}: expected {types}, got bool")
        if not isinstance(value, types):
            raise PerfSchemaError(f"{where}.{key}: expected {types}, got {type(value).__name__} ({value!r:.60})")


def validate_perf(data: Any, where: str = "perf.json") -> dict:
    """Check a perf.json dict; returns it unchanged or raises `PerfSchemaError`."""
    _check(data, TOP, where)
    if data["schema_version"] > SCHEMA_VERSION or data["schema_version"] < 1:
        raise PerfSchemaError(f"{where}: schema_version {data['schema_version']} is not understood "
                              f"(this echoweave reads 1..{SCHEMA_VERSION})")
    if data["kind"] != "echoweave-perf":
        raise PerfSchemaError(f"{where}: kind must be 'echoweave-perf', got {data['kind']!r}")
    if data["target"].get("kind") not in ("host", "android"):
        raise PerfSchemaError(f"{where}.target.kind must be 'host' or 'android'")
    _check(data["host"], HOST, f"{where}.host")
    _check(data["config"], CONFIG, f"{where}.config")
    for i, g in enumerate(data["gemm"]):
        _check(g, GEMM, f"{where}.gemm[{i}]")
    ids = set()
    for i, cell in enumerate(data["cells"]):
        at = f"{where}.cells[{i}]"
        _check(cell, CELL, at)
        if cell["id"] in ids:
            raise PerfSchemaError(f"{at}: duplicate cell id {cell['id']!r}")
        ids.add(cell["id"])
        if cell["mode"] not in MODES:
            raise PerfSchemaError(f"{at}.mode must be one of {MODES}, got {cell['mode']!r}")
        lat = cell["latency_ms"]
        _check(lat, LATENCY, f"{at}.latency_ms")
        if lat["n"] < 1 or not lat["min"] <= (lat["median"] if lat["median"] is not None else lat["min"]) <= lat["max"]:
            raise PerfSchemaError(f"{at}.latency_ms: need n >= 1 and min <= median <= max")
        if any(lat[k] is not None and lat[k] < 0 for k in LATENCY if k != "n"):
            raise PerfSchemaError(f"{at}.latency_ms: negative latency")
        if cell["samples_ms"] and len(cell["samples_ms"]) != lat["n"]:
            raise PerfSchemaError(f"{at}: {len(cell['samples_ms'])} samples but latency_ms.n = {lat['n']}")
        _check(cell["realtime"], REALTIME, f"{at}.realtime")
        if cell["realtime"]["verdict"] not in VERDICTS:
            raise PerfSchemaError(f"{at}.realtime.verdict must be one of {VERDICTS}")
        if not isinstance(cell["load_ms"].get("median"), NUM + (type(None),)):
            raise PerfSchemaError(f"{at}.load_ms.median must be a number or null")
    for i, s in enumerate(data["skipped"]):
        if not isinstance(s, dict) or not isinstance(s.get("reason"), str):
            raise PerfSchemaError(f"{where}.skipped[{i}]: needs a 'reason' string")
    return data
