"""Check exported Core ML packages on a Mac against the eager PyTorch reference saved at export.

Standalone: needs only coremltools and numpy (no torch, no echoweave). The export writes this
script and ``coreml_reference.npz`` beside the ``.mlpackage`` folders; on macOS run

    python coreml_check_macos.py artifacts/tfw_r50                 # every *.mlpackage there
    python coreml_check_macos.py artifacts/tfw_r50 --package tfw_r50_w8.mlpackage --compute_units CPU_ONLY

For every package and every function (forward, embed_frame, classify_window) it predicts each
reference input and prints the max absolute difference, the difference relative to the
reference's scale and, for logits, the top-1 agreement. Exit code: 0 all within tolerance,
1 a mismatch, 2 cannot check (not macOS, missing files, bad arguments).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

REFERENCE_FILE = "coreml_reference.npz"
#: Per file tag: (max |diff| / max |expected|, minimum top-1 agreement of logits).
TOLERANCES = {"fp32": (1e-3, 1.0), "fp16": (3e-2, 0.9), "w8": (1e-1, 0.75)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the export folder (artifacts/<model_id>)")
    parser.add_argument("--package", action="append", default=None,
                        help="package name inside the folder (repeatable; default: every *.mlpackage)")
    parser.add_argument("--compute_units", default="ALL", choices=["ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE"],
                        help="Core ML compute units (default ALL)")
    parser.add_argument("--rel_tol", type=float, default=None,
                        help="override the relative tolerance (default by precision: fp32 1e-3, fp16 3e-2, w8 0.1)")
    parser.add_argument("--min_agreement", type=float, default=None,
                        help="override the minimum top-1 agreement of logits (default fp32 1.0, fp16 0.9, w8 0.75)")
    return parser.parse_args(argv)


def load_reference(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of ``folder/coreml_reference.npz``."""
    path = folder / REFERENCE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no reference file (export the model with the coreml format first)")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def find_packages(folder: Path, names: list[str] | None) -> list[Path]:
    """The packages to check (``names`` inside ``folder``, or every ``*.mlpackage``)."""
    packages = [folder / n for n in names] if names else sorted(folder.glob("*.mlpackage"))
    missing = [str(p) for p in packages if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: no such .mlpackage")
    if not packages:
        raise FileNotFoundError(f"{folder}: no .mlpackage here")
    return packages


def precision_tag(package: Path) -> str:
    match = re.search(r"_(fp32|fp16|w8)\.mlpackage$", package.name)
    return match.group(1) if match else "fp16"


def check_function(package: Path, function: str, names: dict, arrays: dict, compute_units: str,
                   rel_tol: float, min_agreement: float) -> bool:
    """Predict every reference input of one function; print the comparison; True when within tolerance."""
    import coremltools as ct

    model = ct.models.MLModel(str(package), function_name=function,
                              compute_units=getattr(ct.ComputeUnit, compute_units))
    input_names = names.get("inputs") or [names["input"]]  # older references name one input
    stacks = [arrays[f"{function}__in__{n}"] for n in input_names]
    inputs = stacks[0]
    expected = arrays[f"{function}__out__{names['output']}"]
    got = np.stack([np.asarray(model.predict({n: s[i] for n, s in zip(input_names, stacks)})[names["output"]],
                               dtype=np.float32) for i in range(len(inputs))]).reshape(expected.shape)
    diff = float(np.abs(got - expected).max())
    rel = diff / max(float(np.abs(expected).max()), 1e-6)
    ok = rel <= rel_tol
    line = f"  {function:<16} n={len(inputs):<3} max|diff|={diff:.5f} rel={rel:.5f} (tol {rel_tol:g})"
    if names["output"] == "logits":
        agreement = float(np.mean(got.reshape(len(inputs), -1).argmax(1) == expected.reshape(len(inputs), -1).argmax(1)))
        ok = ok and agreement >= min_agreement
        line += f" top-1 agreement={agreement:.3f} (min {min_agreement:g})"
    print(line + ("  OK" if ok else "  MISMATCH"))
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        meta, arrays = load_reference(args.folder)
        packages = find_packages(args.folder, args.package)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if sys.platform != "darwin":
        print(f"error: Core ML prediction needs macOS (this is {sys.platform}); {len(packages)} package(s) in "
              f"{args.folder} left unchecked. Copy the folder to a Mac and run this script there.", file=sys.stderr)
        return 2
    all_ok = True
    for package in packages:
        tag = precision_tag(package)
        rel_tol, min_agreement = TOLERANCES[tag]
        rel_tol = args.rel_tol if args.rel_tol is not None else rel_tol
        min_agreement = args.min_agreement if args.min_agreement is not None else min_agreement
        print(f"{package.name} ({tag}, compute units {args.compute_units}):")
        for function, names in meta["functions"].items():
            try:
                all_ok &= check_function(package, function, names, arrays, args.compute_units, rel_tol, min_agreement)
            except Exception as exc:  # one broken function must not hide the others' results
                print(f"  {function:<16} FAILED: {type(exc).__name__}: {exc}")
                all_ok = False
    print("all functions match the eager reference" if all_ok else "MISMATCH: see the lines above")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
