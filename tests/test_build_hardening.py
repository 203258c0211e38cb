"""The native module is built hardened (issue 19 item 13): _FORTIFY_SOURCE=2 and -fstack-protector-strong as
the compiler saw them (``_core.build_hardening``, from its predefined macros), full RELRO and BIND_NOW and the
stack-protector's import in the ELF file itself (read with binutils' readelf where it is installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from hts._native import _core


def test_compiled_with_fortify_and_strong_stack_protector():
    info = _core.build_hardening
    assert info["optimized"]
    assert info["fortify_source"] >= 2
    assert info["stack_protector"] in ("strong", "all")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF checks")
@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf")
def test_linked_with_full_relro_and_stack_canaries():
    path = _core.__file__
    program = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    dynamic = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True, check=True).stdout
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", path], capture_output=True, text=True,
                             check=True).stdout
    assert "GNU_RELRO" in program
    assert "BIND_NOW" in dynamic or "NOW" in dynamic.split("FLAGS_1", 1)[-1].splitlines()[0]
    assert "__stack_chk_fail" in symbols
