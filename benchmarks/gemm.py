"""The best matrix-multiply rate a runtime reaches on this host, measured in the same run.

A model's MAC rate is judged against two ceilings: the theoretical peak of the CPU
(`echoweave.benchmarks.hostinfo.peak_macs`) and this one, what the *same runtime* achieves on
one large GEMM ``(m x k) @ (k x n)`` at the same precision and thread count. The GEMM model is a
single bias-free ``nn.Linear(k, n)`` on an ``(m, k)`` input, exported the way the kit exports
models and run through the kit's own runtime adapters (`echoweave.edge.runtime`):

* executorch: (at the process pool's thread count only, see `echoweave.benchmarks.threads`)
  ``torch.export`` -> (int8: PT2E XNNPACKQuantizer, per-channel symmetric) ->
  ``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``.pte``;
* onnxruntime: ``torch.onnx.export`` -> (int8: static QDQ U8S8 per-channel, as the model export);
* litert: litert-torch signature ``forward`` -> (int8: ai-edge-quantizer static a8w8, float I/O);
* eager: ``torch.nn.functional.linear`` at ``torch.set_num_threads(threads)`` (fp32 only).

int8 calibration uses random normal inputs: a GEMM has no "real" data, and its speed does not
depend on the values. Exported GEMM files are cached under ``cache_dir`` (keyed on size).
Building them needs torch and the converters; without them the GEMM ceiling is not measured
and the report says so.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from echoweave.benchmarks.threads import apply_threads
from echoweave.edge.atomic import atomic_path
from echoweave.edge.formats import get_runtime

DEFAULT_SHAPE = (256, 2048, 2048)  # m, k, n: 1.07 GMAC per call, large enough to be compute-bound


def _linear(k: int, n: int):
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(k, n, bias=False).eval()


def _calibration(m: int, k: int, count: int = 4):
    import torch

    g = torch.Generator().manual_seed(1)
    return [torch.randn(m, k, generator=g) for _ in range(count)]


def _build_executorch(path: Path, m: int, k: int, n: int, precision: str) -> None:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    module, x = _linear(k, n), torch.randn(m, k)
    if precision == "int8":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        graph = torch.export.export(module, (x,)).module()
        prepared = prepare_pt2e(graph, XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)))
        with torch.no_grad():
            for sample in _calibration(m, k):
                prepared(sample)
        module = convert_pt2e(prepared)
    program = torch.export.export(module, (x,))
    path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)


def _build_onnx(path: Path, m: int, k: int, n: int, precision: str) -> None:
    import torch

    fp32 = path if precision == "fp32" else path.with_suffix(".fp32.onnx")
    torch.onnx.export(_linear(k, n), (torch.randn(m, k),), str(fp32), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=17)
    if precision == "int8":
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{"x": s.numpy()} for s in _calibration(m, k)])

            def get_next(self):
                return next(self.items, None)

        quantize_static(str(fp32), str(path), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()


def _build_litert(path: Path, m: int, k: int, n: int, precision: str) -> None:
    import litert_torch
    import torch

    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    fp32 = path if precision == "fp32" else path.with_suffix(".fp32.tflite")
    model = litert_torch.signature("forward", _linear(k, n), sample_kwargs={"input": torch.randn(m, k)}).convert()
    fp32.write_bytes(model.model_content())
    if precision == "int8":
        from ai_edge_quantizer import qtyping, quantizer, recipe
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        quant = quantizer.Quantizer(str(fp32), recipe.static_wi8_ai8())
        for boundary in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            quant.update_quantization_recipe(regex=".*", operation_name=boundary,
                                             algorithm_key=AlgorithmName.NO_QUANTIZE)
        stats = quant.calibrate({"forward": [{"input": s.numpy()} for s in _calibration(m, k)]})
        path.write_bytes(bytes(quant.quantize(stats).quantized_model))
        fp32.unlink()


#: GEMM builders by manifest format; which runtime reads each and its file suffix come from the
#: format table (`echoweave.edge.formats`).
BUILDERS = {"executorch": _build_executorch, "onnx": _build_onnx, "litert": _build_litert}


def gemm_artifact(runtime: str, precision: str, shape: tuple[int, int, int], cache_dir: str | Path) -> tuple[Path, dict]:
    """``(folder, manifest-style artifact entry)`` of the GEMM model for a runtime (built once, cached)."""
    m, k, n = shape
    row = get_runtime(runtime)
    if row.format not in BUILDERS:
        # A format without a GEMM model (Core ML, a registered one): its cells get no ceiling, and
        # the harness writes this reason into perf.json's notes.
        raise LookupError(f"no GEMM builder for {row.format} artifacts (has: {', '.join(BUILDERS)})")
    build, suffix = BUILDERS[row.format], row.suffix
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"gemm_{m}x{k}x{n}_{precision}{suffix}"
    if not (folder / name).exists():
        with atomic_path(folder / name) as tmp:  # same suffix: converters pick the format from it
            build(tmp, m, k, n, precision)
    artifact = {"id": f"gemm_{runtime}_{precision}", "format": row.format, "backend": "cpu",
                "precision": precision, "files": [{"path": name}],
                "methods": {"forward": {"file": name, "entry": "forward"}}}
    return folder, artifact


def time_calls(fn, seconds: float, min_calls: int = 3, warmup: int = 2) -> list[float]:
    """Milliseconds of repeated ``fn()`` calls after ``warmup`` untimed ones, for ~``seconds``."""
    for _ in range(warmup):
        fn()
    out, start = [], time.perf_counter()
    while len(out) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def measure_gemm(runtime: str, precision: str, threads: int, shape: tuple[int, int, int] = DEFAULT_SHAPE,
                 seconds: float = 1.0, cache_dir: str | Path = ".cache/echoweave-gemm") -> dict:
    """GEMM rate of one (runtime, precision, threads) through the kit's adapter.

    Returns:
        ``{"runtime", "precision", "threads", "m", "k", "n", "median_ms", "gmacs", "calls"}``.

    Raises:
        ImportError / RuntimeNotAvailable: the runtime or a converter is missing.
    """
    m, k, n = shape
    x = np.random.default_rng(2).standard_normal((m, k)).astype(np.float32)
    apply_threads(runtime, threads)
    if runtime == "eager":
        if precision != "fp32":
            raise ValueError("the eager GEMM is fp32 only")
        import torch

        w, xt = _linear(k, n).weight.detach(), torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                torch.nn.functional.linear(xt, w)
        samples = time_calls(call, seconds)
    else:
        from echoweave.edge.runtime.base import open_runtime

        folder, artifact = gemm_artifact(runtime, precision, shape, cache_dir)
        adapter = open_runtime(runtime, folder, artifact, threads=threads)
        try:
            samples = time_calls(lambda: adapter.run("forward", x), seconds)
        finally:
            adapter.close()
    median = float(np.median(samples))
    return {"runtime": runtime, "precision": precision, "threads": int(threads), "m": m, "k": k, "n": n,
            "median_ms": median, "gmacs": m * k * n / (median * 1e6), "calls": len(samples)}
