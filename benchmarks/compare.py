"""``--compare old.json``: ratios between two perf.json runs, cell by cell.

Cells are matched on ``(runtime, precision, threads, mode)``; each ratio is ``new / old``, so
a latency ratio below 1 means the new run is faster. Cells present in only one run are listed.

    rows = compare_perf(old, new)
    print(compare_table(rows, old, new))
"""
from __future__ import annotations

import json
from pathlib import Path

from echoweave.benchmarks.schema import validate_perf

COMPARED = ("median", "p99", "mean", "min")


def _key(cell: dict) -> tuple:
    return cell["runtime"], cell["precision"], cell["threads"], cell["mode"]


def read_perf(path: str | Path) -> dict:
    """Read and validate a perf.json."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        from echoweave.benchmarks.schema import PerfSchemaError

        raise PerfSchemaError(f"{path}: cannot read a perf.json here ({exc})") from exc
    return validate_perf(data, str(path))


def centre_ms(cell: dict) -> float:
    """The cell's median latency, or its mean where the tool reported no median."""
    lat = cell["latency_ms"]
    return lat["median"] if lat["median"] is not None else lat["mean"]


def _ratio(new, old):
    return None if new is None or old in (None, 0) else new / old


def compare_perf(old: dict, new: dict) -> list[dict]:
    """One row per cell key: ``{"key", "id", "ratios" {stat: new/old}, "load_ratio", "old", "new"}``;
    cells of one run only have ``ratios`` None and ``only_in`` "old"/"new"."""
    olds, news = {_key(c): c for c in old["cells"]}, {_key(c): c for c in new["cells"]}
    rows = []
    for key in list(dict.fromkeys([*olds, *news])):
        o, n = olds.get(key), news.get(key)
        row = {"key": list(key), "id": (n or o)["id"]}
        if o is None or n is None:
            row.update(ratios=None, load_ratio=None, only_in="new" if o is None else "old")
        else:
            row.update(ratios={s: _ratio(n["latency_ms"][s], o["latency_ms"][s]) for s in COMPARED},
                       load_ratio=_ratio(n["load_ms"]["median"], o["load_ms"]["median"]),
                       old_median=centre_ms(o), new_median=centre_ms(n), only_in=None)
        rows.append(row)
    return rows


def compare_table(rows: list[dict], old: dict, new: dict) -> str:
    """Plain-text table of `compare_perf` rows (ratio new/old; < 1 = faster now)."""
    def f(x):
        return "   –  " if x is None else f"{x:6.3f}"

    head = (f"new {new['created_utc']} ({new['host'].get('cpu_model')}, load {new['host'].get('load_average_start')}) "
            f"vs old {old['created_utc']} ({old['host'].get('cpu_model')}, load {old['host'].get('load_average_start')})")
    lines = [head, "ratio = new / old (< 1: faster now)", "",
             f"{'cell':<34} {'old med':>9} {'new med':>9} " + " ".join(f"{s:>6}" for s in COMPARED) + "   load"]
    for r in rows:
        if r["only_in"]:
            lines.append(f"{r['id']:<34} only in the {r['only_in']} run")
            continue
        lines.append(f"{r['id']:<34} {r['old_median']:9.3f} {r['new_median']:9.3f} "
                     + " ".join(f(r["ratios"][s]) for s in COMPARED) + " " + f(r["load_ratio"]))
    return "\n".join(lines)
