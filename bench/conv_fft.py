"""Conv operator benchmark: hts.spectra.conv_operator_eigenvalues vs numpy (fft2 + batched SVD or eigvalsh).

    python bench/conv_fft.py [--quick | --smoke] [--out bench/results/conv_fft.md]

Every contender is measured in the same run, on the same kernel; the table gives median wall times and ratios
(numpy ÷ hts: above 1 means hts is faster), and the largest disagreement with numpy's SVD relative to λ_max. Nothing here is
asserted: the machines are noisy, the numbers are for people.
"""

from __future__ import annotations

import os

import numpy as np

from _common import bench_dir, blas_threads, median_time, parse_mode, thread_counts, write_standalone
from _report import Section, Table, ratio

from hts import spectra

CASES = [  # (out, in, kh, kw), (n1, n2)
    ((256, 256, 3, 3), (3, 3)),
    ((256, 256, 3, 3), (8, 8)),
    ((512, 512, 3, 3), (7, 7)),
    ((64, 64, 3, 3), (32, 32)),
    ((64, 3, 7, 7), (32, 32)),
]
QUICK_SKIP = {((512, 512, 3, 3), (7, 7))}
SMOKE_CASES = [((8, 4, 3, 3), (4, 4))]


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


def run(mode: str) -> Section:
    """Time hts and both numpy routes on every case; ratios are numpy ÷ hts at the same thread count."""
    threads = thread_counts()
    tn = threads[-1]
    cases = SMOKE_CASES if mode == "smoke" else [c for c in CASES if not (mode == "quick" and c in QUICK_SKIP)]
    cols = [("kernel @ input", "text")] + [(f"hts {t}t", "ms") for t in threads] + [("hts f32 1t", "ms")]
    for t in threads:
        cols += [(f"numpy svd {t}t", "ms"), (f"numpy eigvalsh {t}t", "ms")]
    for t in threads:
        cols += [(f"svd/hts {t}t", "x"), (f"eigvalsh/hts {t}t", "x")]
    cols += [("max error / λ_max vs svd", "e")]
    table = Table("Conv operator spectrum, float64 (median ms)", cols)
    rng = np.random.default_rng(0)
    for shape, (n1, n2) in cases:
        kernel = (rng.standard_normal(shape) / np.sqrt(shape[1] * shape[2] * shape[3])).astype(np.float32)
        res: dict[str, float] = {}
        for t in threads:
            # hts outside threadpoolctl: a limit would also raise hts's private OpenBLAS above its 1 thread.
            res[f"hts {t}t"] = median_time(
                lambda: spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2), threads=t), mode=mode)
            with blas_threads(t):
                res[f"svd {t}t"] = median_time(lambda: numpy_svd(kernel, n1, n2), mode=mode, max_reps=3)
                res[f"eigvalsh {t}t"] = median_time(lambda: numpy_eigvalsh(kernel, n1, n2), mode=mode, max_reps=3)
        res["hts f32 1t"] = median_time(lambda: spectra.conv_operator_eigenvalues(
            kernel, input_size=(n1, n2), threads=1, precision="float32"), mode=mode)
        ours = spectra.conv_operator_eigenvalues(kernel, input_size=(n1, n2))
        ref = numpy_svd(kernel, n1, n2)
        err = float(np.max(np.abs(ours - ref)) / ref.max())
        row = [f"{shape[0]}×{shape[1]}×{shape[2]}×{shape[3]} @ {n1}×{n2}"] + [res[f"hts {t}t"] for t in threads]
        row.append(res["hts f32 1t"])
        for t in threads:
            row += [res[f"svd {t}t"], res[f"eigvalsh {t}t"]]
        for t in threads:
            row += [ratio(res[f"svd {t}t"], res[f"hts {t}t"]), ratio(res[f"eigvalsh {t}t"], res[f"hts {t}t"])]
        table.add(*row, err)
    table.notes = (f"\"×\" columns: numpy time ÷ hts time at the same thread count (above 1: hts is faster). "
                   f"\"1t\"/\"{tn}t\": threads given to hts, or BLAS threads of numpy (threadpoolctl). numpy svd: "
                   "`np.fft.fft2(K.astype(float64), s=(n1, n2))` then a batched `np.linalg.svd(compute_uv=False)`, "
                   "complex128 throughout; numpy eigvalsh: the same FFT, the batched Gram of the smaller side and "
                   "`np.linalg.eigvalsh`. Kernels are float32 (as trained weights are); hts computes in float64 "
                   "unless \"f32\". The last column compares hts float64 with numpy svd." +
                   ("" if mode == "full" else " Quick mode skips 512×512×3×3 @ 7×7."))
    return Section("conv_fft", "Conv operator spectrum (conv_method='fft')", [table])


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "conv_fft.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
