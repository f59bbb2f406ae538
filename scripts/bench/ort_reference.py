#!/usr/bin/env python3
"""Python side of `petal bench inference` (src/app/bench/inference.rs), run with .venv's Python.

  ort_reference.py ort MODEL INPUT OUTPUT --depth D --height H --width W --batch B --threads T --repeats R
      Runs the folded ONNX graph MODEL through Python onnxruntime on the volume in INPUT
      (raw little-endian float32, [D, H, W]) exactly as petal's engine does: windows of the
      graph's input channels along z (stride 1, edge slices replicated), B windows per call,
      the centre output slice kept; T intra-op threads. One untimed warm-up pass, then R timed
      passes. Writes the last pass's volume to OUTPUT (raw float32) and prints JSON.

  ort_reference.py gemm --size N --repeats R
      Times numpy float32 matmul N×N×N (best of R after one warm-up) and says which OpenBLAS
      kernel ran (its core name, read through ctypes from numpy's own OpenBLAS). Prints JSON.
"""

import argparse
import ctypes
import json
import sys
import time


def ort_reference(args):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    (graph_output,) = session.get_outputs()
    slices = graph_input.shape[1]
    if not isinstance(slices, int):
        raise SystemExit(f"the graph input {graph_input.name} has no fixed channel count: {graph_input.shape}")
    depth, height, width = args.depth, args.height, args.width
    volume = np.fromfile(args.input, dtype="<f4")
    if volume.size != depth * height * width:
        raise SystemExit(f"{args.input} holds {volume.size} values, not {depth}×{height}×{width}")
    volume = volume.reshape(depth, height, width)
    offsets = np.arange(slices) - slices // 2

    def denoise(volume):
        out = np.empty_like(volume)
        for start in range(0, depth, args.batch):
            centres = np.arange(start, min(start + args.batch, depth))
            sources = np.clip(centres[:, None] + offsets[None, :], 0, depth - 1)
            windows = np.ascontiguousarray(volume[sources])  # [windows, slices, height, width]
            (result,) = session.run([graph_output.name], {graph_input.name: windows})
            out[centres] = result[:, slices // 2]
        return out

    denoise(volume)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        out = denoise(volume)
        seconds.append(time.perf_counter() - started)
    out.astype("<f4").tofile(args.output)
    return {
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "providers": session.get_providers(),
        "intra_op_threads": args.threads,
        "windows_per_call": args.batch,
        "seconds": seconds,
    }


def openblas_library():
    """Path of the OpenBLAS library numpy loaded (numpy.libs/libscipy_openblas64_*.so)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if "openblas" in path.lower() and ".so" in path:
                return path
    return None


def openblas_call(library, names):
    for name in names:
        function = getattr(library, name, None)
        if function is not None:
            function.restype = ctypes.c_char_p
            value = function()
            return value.decode() if value else None
    return None


def openblas_int(library, names):
    for name in names:
        function = getattr(library, name, None)
        if function is not None:
            function.restype = ctypes.c_int
            return function()
    return None


def gemm(args):
    import numpy as np

    n = args.size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)  # warm-up (and loads OpenBLAS)
    best = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - started)
    path = openblas_library()
    core = config = threads = None
    if path is not None:
        library = ctypes.CDLL(path)
        core = openblas_call(
            library,
            ["scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_", "openblas_get_corename"],
        )
        config = openblas_call(
            library,
            ["scipy_openblas_get_config64_", "scipy_openblas_get_config", "openblas_get_config64_", "openblas_get_config"],
        )
        threads = openblas_int(
            library,
            ["scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_", "openblas_get_num_threads"],
        )
    return {
        "numpy": np.__version__,
        "size": n,
        "best_seconds": best,
        "gflops": 2.0 * n**3 / best / 1e9,
        "blas_library": path,
        "blas_core": core,
        "blas_config": config,
        "blas_threads": threads,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("ort")
    run.add_argument("model")
    run.add_argument("input")
    run.add_argument("output")
    for name in ("depth", "height", "width", "batch", "threads", "repeats"):
        run.add_argument(f"--{name}", type=int, required=True)
    matmul = commands.add_parser("gemm")
    matmul.add_argument("--size", type=int, default=2048)
    matmul.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = ort_reference(args) if args.command == "ort" else gemm(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
