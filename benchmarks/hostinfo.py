"""Host facts for a latency report and the theoretical peak multiply-accumulate (MAC) rate.

    info = host_info()                 # CPU model, cores, ISA flags, clock, OS, versions, load
    peak = peak_macs(parse_cpuinfo(open("/proc/cpuinfo").read()))

The peak is a *model*, not a measurement (docs/TOOLCHAIN_NOTES.md, "The hardware limit of a host")::

    peak MAC/s = cores x FMA units per core x MACs per instruction per unit x clock

* fp32: one FMA instruction does one MAC per 32-bit lane: 16 lanes with AVX-512, 8 with
  AVX2+FMA, 4 with NEON (aarch64 ``asimd``).
* int8: AVX-512 VNNI ``vpdpbusd`` does 4 u8 x s8 MACs per 32-bit lane = 64 per instruction;
  AVX-VNNI (256-bit) 32; AVX-512BW / AVX2 without VNNI need ``vpmaddubsw`` + ``vpmaddwd``
  (two instructions on the same units), so half of that: 32 / 16; aarch64 ``asimddp`` (sdot)
  16, ``i8mm`` (smmla) 32.
* AMX (``amx_int8``) is reported separately: one TMUL unit per core doing 1024 int8 MACs per
  cycle (Intel: 2048 int8 ops/cycle/core). XNNPACK's and MLAS's int8 GEMMs normally use VNNI,
  so fractions of peak are computed against the VNNI figure; the AMX figure is an upper bound.
* FMA units per core: 2 is assumed (server/desktop x86 with two 512-bit FMA ports); some Xeon
  SKUs have one 512-bit unit; pass ``fma_units`` when you know better.
* clock: the nominal GHz from the model name (``@ 2.30GHz``) if present, else ``cpu MHz``
  of /proc/cpuinfo (the current clock a VM reports), else cpufreq's max. Turbo is ignored.
* cores: physical cores (unique ``physical id``/``core id``) among the CPUs this process may
  use; hyper-threads share FMA units, so they do not add peak.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from echoweave.edge.formats import LiveSequence, format_rows

#: fp32 MACs per FMA instruction per unit, first matching flag wins.
FP32_MACS = (("avx512f", 16), ("fma", 8), ("asimd", 4))
#: int8 MACs per instruction per unit, first matching flag wins.
INT8_MACS = (("avx512_vnni", 64), ("avx_vnni", 32), ("avx512bw", 32), ("avx2", 16), ("i8mm", 32), ("asimddp", 16))
AMX_INT8_MACS_PER_CYCLE = 1024
#: Distributions whose versions a report records: the format table's runtime packages and their neighbours.
RUNTIME_PACKAGES = LiveSequence(lambda: dict.fromkeys(("echoweave", "numpy", *(r.pip for r in format_rows()), "torch")))


def parse_cpuinfo(text: str) -> dict:
    """Model name, logical CPUs, physical cores, ISA flags and clock from /proc/cpuinfo text."""
    blocks = [b for b in text.strip().split("\n\n") if b.strip()]
    procs = []
    for block in blocks:
        fields = {}
        for line in block.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        if "processor" in fields:
            procs.append(fields)
    if not procs:
        raise ValueError("no 'processor' entries in the cpuinfo text")
    first = procs[0]
    model = first.get("model name") or first.get("Hardware") or first.get("CPU part") or "unknown"
    flags = sorted(set((first.get("flags") or first.get("Features") or "").split()))
    cores = {(p.get("physical id", "0"), p.get("core id", p["processor"])) for p in procs}
    clock = None
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        clock, clock_src = float(m.group(1)), "model name"
    elif first.get("cpu MHz"):
        clock, clock_src = float(first["cpu MHz"]) / 1000.0, "cpu MHz"
    else:
        clock_src = "unknown"
    return {"model": model, "logical_cpus": len(procs), "physical_cores": len(cores), "flags": flags,
            "clock_ghz": clock, "clock_source": clock_src}


def _first(flags, table):
    have = set(flags)
    return next(((f, n) for f, n in table if f in have), (None, 0))


def peak_macs(cpu: dict, cores: int | None = None, clock_ghz: float | None = None, fma_units: int = 2) -> dict:
    """Theoretical peak MAC rates (GMAC/s) and the arithmetic behind them.

    Args:
        cpu: `parse_cpuinfo` output.
        cores: cores to count (default: the physical cores in ``cpu``).
        clock_ghz: clock override (default: ``cpu["clock_ghz"]``).
        fma_units: vector FMA units per core (see the module docstring).

    Returns:
        ``{"fp32_gmacs", "int8_gmacs", "int8_amx_gmacs" (or None), "cores", "clock_ghz", "fma_units",
        "fp32_isa", "int8_isa", "fp32_macs_per_instr", "int8_macs_per_instr", "explanation"}``.
    """
    cores = int(cores or cpu["physical_cores"])
    clock = clock_ghz or cpu.get("clock_ghz")
    fp_isa, fp_n = _first(cpu["flags"], FP32_MACS)
    q_isa, q_n = _first(cpu["flags"], INT8_MACS)
    if not clock:
        return {"fp32_gmacs": None, "int8_gmacs": None, "int8_amx_gmacs": None, "cores": cores, "clock_ghz": None,
                "fma_units": fma_units, "fp32_isa": fp_isa, "int8_isa": q_isa, "fp32_macs_per_instr": fp_n,
                "int8_macs_per_instr": q_n, "explanation": "clock unknown (pass --clock_ghz): no peak computed"}
    fp32 = cores * fma_units * fp_n * clock
    int8 = cores * fma_units * q_n * clock
    amx = cores * AMX_INT8_MACS_PER_CYCLE * clock if "amx_int8" in cpu["flags"] else None
    text = (f"fp32: {cores} cores x {fma_units} FMA units x {fp_n} MACs/instr ({fp_isa}) x {clock:.2f} GHz = "
            f"{fp32:.0f} GMAC/s; int8: {cores} x {fma_units} x {q_n} ({q_isa}) x {clock:.2f} = {int8:.0f} GMAC/s")
    if amx:
        text += f"; AMX int8 upper bound: {cores} x {AMX_INT8_MACS_PER_CYCLE} x {clock:.2f} = {amx:.0f} GMAC/s"
    return {"fp32_gmacs": fp32, "int8_gmacs": int8, "int8_amx_gmacs": amx, "cores": cores, "clock_ghz": clock,
            "fma_units": fma_units, "fp32_isa": fp_isa, "int8_isa": q_isa, "fp32_macs_per_instr": fp_n,
            "int8_macs_per_instr": q_n, "explanation": text}


def usable_cpus() -> int:
    """CPUs this process may run on (affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict:
    """`parse_cpuinfo` of this host (a minimal record on systems without /proc/cpuinfo)."""
    try:
        info = parse_cpuinfo(Path(path).read_text())
    except (OSError, ValueError):
        info = {"model": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count() or 1,
                "physical_cores": os.cpu_count() or 1, "flags": [], "clock_ghz": None, "clock_source": "unknown"}
    if info["clock_ghz"] is None:
        try:  # kHz
            info["clock_ghz"] = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
            info["clock_source"] = "cpufreq max"
        except (OSError, ValueError):
            pass
    return info


def git_commit(repo: str | Path | None = None) -> str | None:
    """HEAD of the echoweave checkout (with ``-dirty`` if it has local changes), or None."""
    repo = Path(repo or Path(__file__).resolve().parents[1])
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names=RUNTIME_PACKAGES) -> dict[str, str]:
    """Installed versions of the runtimes and their neighbours."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def host_info(clock_ghz: float | None = None, fma_units: int = 2) -> dict:
    """Everything perf.json's ``host`` section records (see `echoweave.benchmarks.schema`)."""
    cpu = read_cpuinfo()
    cores = min(cpu["physical_cores"], usable_cpus())
    return {"cpu_model": cpu["model"], "logical_cpus": cpu["logical_cpus"], "physical_cores": cpu["physical_cores"],
            "usable_cpus": usable_cpus(), "isa_flags": [f for f in cpu["flags"] if re.match(
                r"(avx|fma|amx|sse4|asimd|i8mm|sve|neon)", f)],
            "clock_ghz": clock_ghz or cpu["clock_ghz"], "clock_source": "override" if clock_ghz else cpu["clock_source"],
            "peak": peak_macs(cpu, cores=cores, clock_ghz=clock_ghz, fma_units=fma_units),
            "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
            "python": sys.version.split()[0], "versions": package_versions(), "git_commit": git_commit(),
            "load_average_start": load_average(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def peak_for_threads(peak: dict, threads: int, precision: str) -> float | None:
    """Peak GMAC/s for ``min(threads, cores)`` cores at a precision (fp16 counted as fp32)."""
    key = "int8_gmacs" if precision == "int8" else "fp32_gmacs"
    if not peak.get(key):
        return None
    return peak[key] * min(max(threads, 1), peak["cores"]) / peak["cores"]
