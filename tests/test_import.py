"""`import hts` is light and quiet: numpy and the kernel only, no output, no logging configuration."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import hts


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_import_is_light_and_silent():
    code = (
        "import sys, logging, json; import hts; "
        "print(json.dumps({'heavy': [m for m in ('torch', 'pandas', 'matplotlib', 'scipy', 'tqdm') "
        "if m in sys.modules], 'root_handlers': len(logging.getLogger().handlers), "
        "'version': hts.__version__}))"
    )
    out = run_python(code)
    assert out.stderr == ""
    info = json.loads(out.stdout)
    assert info["heavy"] == []
    assert info["root_handlers"] == 0
    assert info["version"] == hts.__version__


def test_hts_logger_has_only_a_null_handler():
    handlers = logging.getLogger("hts").handlers
    assert len(handlers) == 1 and isinstance(handlers[0], logging.NullHandler)


def test_public_surface():
    assert set(hts.__all__) == {"Analysis", "Cancelled", "HTSError", "Inventory", "ModelFileError", "__version__", "analyze",
                               "compare", "datasets", "distances", "open", "plot", "spectra", "study", "svd_sharpness",
                               "svd_smoothing", "trajectory"}
    assert set(hts.spectra.__all__) == {
        "PowerLawFit", "SpectrumMetrics", "conv_operator_eigenvalues", "eigenvalues", "fit_power_law",
        "frobenius_norm", "kernel_info", "log_alpha_norm",
        "spectrum_metrics",
        "MarchenkoPasturFit", "marchenko_pastur_fit", "randomized_eigenvalues", "randomized_eigenvalue_batch",
        "randomization_metrics",
        "shuffle_elements", "jensen_shannon_distance",
    }
    for name in hts.spectra.__all__:
        assert getattr(hts.spectra, name).__doc__, name


def test_kernel_info():
    info = hts.spectra.kernel_info()
    assert "OpenBLAS" in info["blas"]
    assert info["version"] == hts.__version__
    assert 1 <= info["default_threads"] <= info["cores"]


def test_lazy_attributes_in_a_fresh_interpreter():
    """hts.datasets / hts.study / hts.compare / hts.plot resolve on first attribute access (a fresh process: no
    test has imported the submodules yet)."""
    import subprocess
    import sys

    code = "import hts; hts.datasets.path; hts.study; hts.compare; hts.plot.esd; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
