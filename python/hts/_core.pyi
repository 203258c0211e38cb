"""Type stubs for the private native module hts._core (use hts.spectra instead)."""

from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str
build_hardening: dict[str, Any]

class Stopped(RuntimeError): ...

class StopFlag:
    def __init__(self) -> None: ...
    def set(self) -> None: ...
    def is_set(self) -> bool: ...

def openblas_config() -> str: ...
def gram_eigenvalues(
    arrays: list[npt.NDArray[Any]],
    precision: str = "float64",
    threads: int = 0,
    eigen_solver_max: int = -1,
    tiled_gram_min: int = -1,
    gram_tile: int = -1,
    two_stage_min: int = -1,
    chunked_convert_min: int = -2,
    chunk_bytes: int = -1,
    slab_min_cost: float = -2.0,
    stop: StopFlag | None = None,
) -> list[npt.NDArray[np.floating[Any]]]: ...
def fit_power_law(
    evals: npt.NDArray[np.float64],
    evals_thresh: float = 1e-5,
    threads: int = 0,
    small_n: int = 20,
    small_n_min_tail: int = 8,
    max_candidates: int = 0,
    want_curve: bool = False,
) -> dict[str, Any]: ...
def log_upper_gamma(a: float, z: float) -> float: ...
def tpl_scan(
    x: npt.NDArray[np.float64], idx: npt.NDArray[np.int64], threads: int = 1
) -> dict[str, npt.NDArray[Any]]: ...
def spectrum_stats(evals: npt.NDArray[np.float64], N: float, tolerance: float = 1e-6) -> dict[str, Any]: ...
def log10_alpha_norm(evals: npt.NDArray[np.float64], alpha: float) -> float: ...
def frobenius_norm_sq(w: npt.NDArray[Any]) -> npt.NDArray[np.float64]: ...
def conv_operator_eigenvalues(
    kernel: npt.NDArray[Any], n1: int, n2: int, precision: str = "float64", threads: int = 0
) -> npt.NDArray[np.floating[Any]]: ...
def marchenko_pastur_fit(
    evals: npt.NDArray[np.float64], Q: float, M: float, threads: int = 1, polish: bool = True
) -> dict[str, Any]: ...
def marchenko_pastur_objective(
    rescaled: npt.NDArray[np.float64], Q: float, sigmas: npt.NDArray[np.float64], threads: int = 1
) -> npt.NDArray[np.float64]: ...
def jensen_shannon_distance(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float: ...
def randomized_gram_eigenvalues(
    arrays: list[npt.NDArray[Any]], seeds: list[int], replicas: list[int], precision: str = "float64",
    threads: int = 0,
) -> list[npt.NDArray[Any]]: ...
def shuffle_elements(
    w: npt.NDArray[Any], out: npt.NDArray[Any], seed: int, replicas: int = 1, threads: int = 0,
    bucket_size: int = 32768,
) -> None: ...
def dequantize_ggml(
    type: int, raw: npt.NDArray[np.uint8], out: npt.NDArray[np.float32], threads: int = 0
) -> None: ...
def ggml_dequant_supported(type: int) -> bool: ...
def ggml_block(type: int) -> tuple[int, int]: ...
