"""hts.datasets: the ww-trends tables ship with the package, load without the shared folder, and equal the
published copy they were made from."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import hts

SHARED = Path(__file__).resolve().parents[2] / "shared/data/ww-trends"


def test_tables_load_with_their_published_shapes():
    models = hts.datasets.ww_trends("models")
    assert len(models) == 36
    assert models.groupby("series").size().to_dict() == {"DenseNet": 4, "ResNet": 5, "ResNet-1K": 19, "VGG": 8}
    assert {"top1_error_pct", "alpha", "alpha_weighted", "log_norm", "log_spectral_norm"} <= set(models.columns)
    layers = hts.datasets.ww_trends("layers")
    assert len(layers) == 8210
    assert set(layers["row_kind"]) == {"matrix", "layer"}
    table1 = hts.datasets.ww_trends("table1")
    assert set(table1["stat"]) == {"rmse", "r2", "kendall_tau"}
    assert len(table1) == 12


def test_bad_names_are_clear():
    with pytest.raises(KeyError, match="ww_trends"):
        hts.datasets.path("imagenet", "x.csv")
    with pytest.raises(KeyError, match="series_models.csv"):
        hts.datasets.path("ww_trends", "../../etc/passwd")
    with pytest.raises(KeyError, match="models"):
        hts.datasets.ww_trends("nope")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared ww-trends folder is only on the developers' machines")
def test_packaged_copy_equals_the_published_data():
    for name in ("series_models.csv", "paper_table1.csv"):
        assert hts.datasets.path("ww_trends", name).read_bytes() == (SHARED / name).read_bytes()
    with gzip.open(hts.datasets.path("ww_trends", "series_layers.csv.gz")) as f:
        assert f.read() == (SHARED / "series_layers.csv").read_bytes()
