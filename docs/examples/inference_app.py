"""An inference service that watches its own model with hts (Starlette + uvicorn + prometheus_client).

    pip install torch==2.13.0 && pip install 'hts[prometheus]' starlette uvicorn
    uvicorn --app-dir docs/examples inference_app:app --host 127.0.0.1 --port 8000
    curl -X POST localhost:8000/predict -d '{"inputs": [[0.1, 0.2, ...]]}'   # 32 numbers per input
    curl localhost:8000/metrics                                              # the app's metrics + hts's gauges

What it shows:

- The served model is analysed by ``hts`` on a background thread started at application start-up (and again
  on ``POST /reanalyze``), so requests are answered while the analysis runs; hts's kernel releases the GIL.
  The thread reads a snapshot of the weights (``state_dict`` tensors cloned under the model lock), never the
  tensors an inference is using.
- hts's gauges are exported through ``hts.prometheus_collector.Collector`` registered into the app's *own*
  ``CollectorRegistry``, served on the app's own ``/metrics`` with the app's request counter: no second port.
- A failed analysis is exported (``hts_model_error 1``), never raised into the server.

The model is a small MLP built here (a real service would load its checkpoint); set ``HTS_EXAMPLE_SEED`` to
change its weights.
"""

from __future__ import annotations

import contextlib
import os
import threading

import torch
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hts.prometheus_collector import AnalysisBoard, Collector

MODEL_NAME = "mlp"
IN_FEATURES = 32


def build_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(IN_FEATURES, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()


model = build_model(int(os.environ.get("HTS_EXAMPLE_SEED", "0")))
model_lock = threading.Lock()

registry = CollectorRegistry()
requests_total = Counter("app_predictions", "Predictions served", registry=registry)
board = AnalysisBoard()
registry.register(Collector(board))


def weights_snapshot() -> dict:
    """A copy of the served weights, so the analysis never reads tensors a request is using."""
    with model_lock:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}


def start_analysis() -> threading.Thread:
    thread = threading.Thread(target=lambda: board.analyze(MODEL_NAME, weights_snapshot()), name="hts-analysis",
                              daemon=True)
    thread.start()
    return thread


async def predict(request: Request) -> Response:
    body = await request.json()
    try:
        x = torch.tensor(body["inputs"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        return JSONResponse({"error": f"expected {{'inputs': [[{IN_FEATURES} numbers], ...]}}: {err}"}, 400)
    if x.ndim != 2 or x.shape[1] != IN_FEATURES:
        return JSONResponse({"error": f"inputs must be n x {IN_FEATURES}, got {list(x.shape)}"}, 400)
    with model_lock, torch.no_grad():
        y = model(x)
    requests_total.inc(len(x))
    return JSONResponse({"classes": y.argmax(dim=1).tolist()})


async def reanalyze(request: Request) -> Response:
    start_analysis()
    return JSONResponse({"started": True}, 202)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    start_analysis()
    yield


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/reanalyze", reanalyze, methods=["POST"]),
                        Route("/metrics", metrics)], lifespan=lifespan)
