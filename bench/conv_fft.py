"""Conv operator benchmark: hts.spectra.conv_operator_eigenvalues vs numpy (fft2 + batched SVD or eigvalsh).

    python bench/conv_fft.py [--quick] [--out bench/results/conv_fft.md]

Every contender is measured in the same run, on the same kernel; the table gives median wall times and ratios
(< 1 means hts is faster), and the largest disagreement with numpy's SVD relative to λ_max. Nothing here is
asserted: the machines are noisy, the numbers are for people.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import blas_threads, markdown_table, median_time, write_report  # noqa: E402

from hts import spectra  # noqa: E402

CASES = [  # (out, in, kh, kw), (n1, n2)
    ((256, 256, 3, 3), (3, 3)),
    ((256, 256, 3, 3), (8, 8)),
    ((512, 512, 3, 3), (7, 7)),
    ((64, 64, 3, 3), (32, 32)),
    ((64, 3, 7, 7), (32, 32)),
]
QUICK_SKIP = {((512, 512, 3, 3), (7, 7))}


def numpy_dft(kernel: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """A_uv for every frequency: (n1·n2, out, in) complex128, from numpy's FFT of the zero-padded kernel."""
    out, inp = kernel.shape[:2]
    return np.fft.fft2(kernel.astype(np.float64), s=(n1, n2)).transpose(2, 3, 0, 1).reshape(n1 * n2, out, inp)


def numpy_svd(kernel: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """fft2 + batched SVD (values only), sorted ascending per frequency like hts."""
    return np.sort(np.linalg.svd(numpy_dft(kernel, n1, n2), compute_uv=False) ** 2, axis=1)


def numpy_eigvalsh(kernel: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """fft2 + batched Gram of the smaller side + eigvalsh: the same route as hts, in numpy."""
    a = numpy_dft(kernel, n1, n2)
    ah = np.conj(np.swapaxes(a, 1, 2))
    return np.linalg.eigvalsh(ah @ a if a.shape[1] >= a.shape[2] else a @ ah)


def fmt_ms(t: float | None) -> str:
    return "skipped" if t is None else (f"{t * 1e3:.2f}" if t < 10 else f"{t * 1e3:.0f}")


def bench(quick: bool) -> str:
    cores = spectra.kernel_info()["cores"]
    rng = np.random.default_rng(0)
    rows = []
    for shape, (n1, n2) in CASES:
        if quick and (shape, (n1, n2)) in QUICK_SKIP:
            continue
        kernel = (rng.standard_normal(shape) / np.sqrt(shape[1] * shape[2] * shape[3])).astype(np.float32)
        res: dict[str, float] = {}
        for threads in (1, cores):
            # hts outside threadpoolctl: a limit would also raise hts's private OpenBLAS above its 1 thread.
            res[f"hts {threads}t"] = median_time(
                lambda: spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), threads=threads))
            with blas_threads(threads):
                res[f"svd {threads}t"] = median_time(lambda: numpy_svd(kernel, n1, n2), max_reps=3)
                res[f"eigvalsh {threads}t"] = median_time(lambda: numpy_eigvalsh(kernel, n1, n2), max_reps=3)
        res["hts f32 1t"] = median_time(
            lambda: spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), threads=1, precision="float32"))
        ours = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2))
        ref = numpy_svd(kernel, n1, n2)
        err = float(np.max(np.abs(ours - ref)) / ref.max())
        best = {t: min(res[f"svd {t}t"], res[f"eigvalsh {t}t"]) for t in (1, cores)}
        rows.append(
            [f"{shape[0]}×{shape[1]}×{shape[2]}×{shape[3]} @ {n1}×{n2}"]
            + [fmt_ms(res[c]) for c in ("hts 1t", f"hts {cores}t", "hts f32 1t", "svd 1t", "eigvalsh 1t",
                                        f"svd {cores}t", f"eigvalsh {cores}t")]
            + [f"{res['hts 1t'] / res['svd 1t']:.2f}", f"{res[f'hts {cores}t'] / res[f'svd {cores}t']:.2f}",
               f"{res['hts 1t'] / best[1]:.2f}", f"{res[f'hts {cores}t'] / best[cores]:.2f}", f"{err:.1e}"]
        )
        print(" | ".join(rows[-1]), flush=True)
    header = ["kernel @ input", "hts 1t", f"hts {cores}t", "hts f32 1t", "numpy svd 1t", "numpy eigvalsh 1t",
              f"numpy svd {cores}t", f"numpy eigvalsh {cores}t", "hts/svd 1t", f"hts/svd {cores}t",
              "hts/best numpy 1t", f"hts/best numpy {cores}t", "max error / λ_max vs svd"]
    return ("### Conv operator spectrum, float64 (median ms)\n\n" + markdown_table(header, rows) +
            "\n\nRatios below 1 mean hts is faster. \"1t\"/\"%dt\": threads given to hts, or BLAS threads of "
            "numpy (threadpoolctl). numpy svd: `np.fft.fft2(K.astype(float64), s=(n1, n2))` then a batched "
            "`np.linalg.svd(compute_uv=False)`, complex128 throughout; numpy eigvalsh: the same FFT, the batched "
            "Gram of the smaller side and `np.linalg.eigvalsh`. Kernels are float32 (as trained weights are); "
            "hts computes in float64 unless \"f32\". The last column compares hts float64 with numpy svd.\n" % cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 512×512×3×3 case")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "conv_fft.md"))
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    table = bench(args.quick)
    load = (f"Load average (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: with "
            f"more runnable threads than cores, multi-thread columns measure contention, not scaling.\n")
    write_report("hts conv operator benchmark", args.quick, [load, table], args.out)

if __name__ == "__main__":
    main()
