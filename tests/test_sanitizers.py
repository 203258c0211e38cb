"""The kernel tests under AddressSanitizer + UndefinedBehaviorSanitizer: zero reports.

A sanitized copy of hts is built out of tree (``HTS_SANITIZE=ON``, ``pip install --no-build-isolation
--target`` into a temporary folder, the build folder there too), then the kernel test files run in a child
Python that preloads the compiler's libasan (and libstdc++, so that ASan can intercept C++ throws) and imports
that copy. Any sanitizer report fails the test. Python's own allocations are never freed at exit by design,
so leak detection is off. Takes ~2 minutes to build and ~1 to run on 2 cores; deselect with ``-m 'not slow'``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
KERNEL_TESTS = ("test_eigenvalues.py", "test_powerlaw.py", "test_norms.py", "test_conv_fft.py", "test_rmt.py",
                "test_concurrency.py", "test_hostile_matrices.py", "test_gram_scheduling.py", "test_chunked_gram.py",
                "test_shuffle.py", "test_randomize.py", "test_fuzz_gguf.py", "test_kernel_stop.py",
                "test_tpl_kernel.py", "test_staged_eigensolver.py")
#: Run too when ``HTS_SANITIZE_ALL=1`` (opt-in: several more minutes on 2 cores, so CI leaves them out): the
#: analysis pipeline, its concurrency and cancellation, and the header fuzzing, all of which call the kernel.
WIDER_TESTS = ("test_analysis.py", "test_analysis_concurrency.py", "test_cancellation.py",
               "test_fuzz_safetensors.py")
BUILD_MODULES = ("scikit_build_core", "pybind11", "cmeel", "cmake", "ninja")

#: Imports the sanitized copy (first on sys.path; editable-install finders removed), then runs pytest.
BOOT = """
import sys
target = sys.argv[1]
sys.path.insert(0, target)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
import hts
if not hts.__file__.startswith(target):
    sys.exit(f"imported {hts.__file__}, not the sanitized copy in {target}")
if sys.argv[2] == "--crash":
    import ctypes
    ctypes.string_at(1)  # a wild read: ASan must report it
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""


def compiler_runtime(name: str) -> str | None:
    """Absolute path of a runtime library of the C++ compiler CMake will pick (None if it has none)."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cxx:
        return None
    try:
        out = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    path = out.stdout.strip()
    return os.path.realpath(path) if os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """(site folder holding the sanitized hts, environment for a child Python that runs it)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the sanitizer run is set up for Linux (LD_PRELOAD of libasan)")
    missing = [m for m in BUILD_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs the build requirements {missing}: pip install '.[test]'")
    asan, stdcxx = compiler_runtime("libasan.so"), compiler_runtime("libstdc++.so")
    if asan is None or stdcxx is None:
        pytest.skip("the C++ compiler has no libasan/libstdc++ (GCC with sanitizer runtimes is needed)")
    root = tmp_path_factory.mktemp("sanitized")
    site, build = root / "site", root / "build"
    env = {**os.environ, "HTS_SANITIZE": "ON", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("HTS_NATIVE", None)
    cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
           "--target", str(site), f"--config-settings=build-dir={build}", str(REPO)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, f"sanitized build failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    reports = root / "reports"
    reports.mkdir()
    child = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH")}
    child.update(
        LD_PRELOAD=f"{asan} {stdcxx}",
        ASAN_OPTIONS=f"detect_leaks=0:halt_on_error=1:log_path={reports}/asan",
        UBSAN_OPTIONS=f"print_stacktrace=1:halt_on_error=1:log_path={reports}/ubsan",
        HYPOTHESIS_PROFILE="sanitize",
    )
    return site, child, reports


def run_child(site, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BOOT, str(site), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=1200)


def report_text(reports: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(reports.iterdir()))


def test_the_sanitizer_reports_a_wild_read(sanitized):
    """The set-up itself works: ASan is loaded in the child and its reports land where the next test looks."""
    site, env, reports = sanitized
    out = run_child(site, env, "--crash")
    assert out.returncode != 0
    assert "AddressSanitizer" in report_text(reports)
    for p in reports.iterdir():
        p.unlink()


@pytest.mark.parametrize("which", ["kernel", "wider"])
def test_kernel_tests_pass_with_zero_sanitizer_reports(sanitized, which):
    if which == "wider" and os.environ.get("HTS_SANITIZE_ALL") != "1":
        pytest.skip("the analysis, concurrency, cancellation and fuzz tests run sanitized with HTS_SANITIZE_ALL=1")
    site, env, reports = sanitized
    tests = [str(REPO / "tests" / name) for name in (KERNEL_TESTS if which == "kernel" else WIDER_TESTS)]
    out = run_child(site, env, "-q", "--capture=sys", "-p", "no:cacheprovider", *tests)
    found = report_text(reports)
    tail = (out.stdout + out.stderr)[-4000:]
    assert not found, f"sanitizer reports:\n{found[:6000]}"
    assert "Sanitizer" not in out.stderr and "runtime error:" not in out.stderr, tail
    assert out.returncode == 0, tail
