"""Public data that ships with hts: the published model-series metrics of the seed study.

``ww_trends`` — per-model and per-matrix WeightWatcher metrics of four ImageNet series (VGG, ResNet, DenseNet,
ResNet-1K) with their reported top-1 errors, and the published Table 1 (RMSE, R² and Kendall τ of accuracy
against each metric) of Martin, Peng & Mahoney, *Predicting trends in the quality of state-of-the-art neural
networks without access to training or testing data*, Nat. Commun. 12, 4122 (2021). Provenance, units and
the meaning of every column: ``hts/datasets/ww_trends/README.md``.

>>> import hts
>>> hts.compare(hts.datasets.path("ww_trends", "series_models.csv")).stat("VGG", "alpha_weighted")  # doctest: +SKIP

Nothing here downloads: the files are package data, read with :mod:`importlib.resources`.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "path", "ww_trends"]

#: Each dataset and its tables (table name → file in the dataset's folder).
DATASETS: dict[str, dict[str, str]] = {
    "ww_trends": {
        "models": "series_models.csv",
        "layers": "series_layers.csv.gz",
        "table1": "paper_table1.csv",
    },
}


def path(dataset: str, filename: str) -> Path:
    """Path of one file of a dataset (e.g. ``path("ww_trends", "series_models.csv")``).

    The package is installed as files (not zipped), so this is a real path that any tool can open.
    """
    tables = DATASETS.get(dataset)
    if tables is None:
        raise KeyError(f"no dataset {dataset!r}; hts ships {sorted(DATASETS)}")
    known = set(tables.values()) | {"README.md"}
    if filename not in known:
        raise KeyError(f"dataset {dataset!r} has no file {filename!r}; its files are {sorted(known)}")
    with resources.as_file(resources.files(__name__) / dataset / filename) as p:
        p = Path(p)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: hts's package data is missing (reinstall hts)")
    return p


def ww_trends(table: str = "models") -> Any:
    """One table of the ww-trends data as a pandas DataFrame.

    Parameters
    ----------
    table
        ``"models"``: one row per model (36 rows: series, model, top-1/top-5 error in %, the WeightWatcher
        summary means ⟨α⟩, ⟨α̂⟩ = ⟨α·log10 λ_max⟩, ⟨log10‖W‖_F⟩, ⟨log10 λ_max⟩, ⟨log10 Σλ^α⟩, …);
        ``"layers"``: one row per weight matrix and per layer (8210 rows); ``"table1"``: the paper's Table 1
        as printed (RMSE and R² of the OLS fit of top-1 accuracy on each metric, and Kendall τ).
    """
    import pandas as pd

    tables = DATASETS["ww_trends"]
    if table not in tables:
        raise KeyError(f"ww_trends has no table {table!r}; choose one of {sorted(tables)}")
    p = path("ww_trends", tables[table])
    if p.suffix == ".gz":
        with gzip.open(p, "rb") as f:
            return pd.read_csv(io.BytesIO(f.read()))
    return pd.read_csv(p)
