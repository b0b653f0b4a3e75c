"""The ASGI app: the v2 routes, /metrics and the page, over the loaded models.

Model names in a URL are only ever looked up among the loaded models: nothing a request says
reaches the file system.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

import zoo
from zoo.export import repository
from zoo.serve import protocol
from zoo.serve.http.hot_path import HotPath, find_model
from zoo.serve.http.metrics import Metrics
from zoo.serve.http.middleware import Observe, RequireToken
from zoo.serve.inference import memory
from zoo.serve.inference.batcher import Batcher

PAGE = Path(__file__).with_name("page.html")
SCRIPT = Path(__file__).with_name("page.js")


@dataclass
class Settings:
    """The server's own limits (each model's batching is in its ``Serving``)."""

    max_queue: int = 1024
    max_body: int = 64 * 2**20  # Triton's default request limit
    max_response: int = 64 * 2**20  # the most bytes one answer may take; larger ones are refused unrun
    max_memory: int = (
        memory.DEFAULT_MB * 2**20
    )  # what the requests in flight may hold at once (zoo/serve/inference/memory.py)
    timeout_s: float = 30.0
    token: str | None = None
    quiet: bool = False
    name_worker: bool = False  # start each access-log line with the worker's pid (zoo serve --workers N)


def page_html(token_required: bool) -> str:
    # The script goes inline, so the one open route "/" is the whole page. Whether a token is needed
    # is no secret (any request would learn it from a 401); saying so lets the page ask at once.
    html = PAGE.read_text().replace('<script src="page.js"></script>', f"<script>\n{SCRIPT.read_text()}</script>")
    return html.replace("<body>", '<body data-token-required="1">') if token_required else html


def describe_model(model) -> dict:
    """The protocol's model metadata: names, versions, the platform, the tensors, and zoo's own."""
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": repository.PLATFORM,
        "inputs": [model.input.describe()],
        "outputs": [o.describe() for o in model.outputs],
        "parameters": model.parameters(),
    }


def create_app(models: dict, settings: Settings) -> Starlette:
    metrics = Metrics(models)
    batchers = {name: Batcher(model, settings.max_queue, metrics) for name, model in models.items()}
    html = page_html(bool(settings.token))

    def find(request):
        """The model the URL names; under /versions/{version}, only if that is the served version."""
        model, missing = find_model(models, request.path_params["name"], request.path_params.get("version"))
        if model is None:
            raise HTTPException(404, missing)
        return model

    async def server_metadata(request):
        return JSONResponse(
            {"name": "autoencoder-zoo", "version": zoo.__version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request):
        return JSONResponse(describe_model(find(request)))

    async def model_ready(request):
        return JSONResponse({"name": find(request).name, "ready": True})

    async def repository_index(request):
        # Triton's repository index (POST): how the page learns which models there are.
        return JSONResponse(
            [{"name": name, "version": model.version, "state": "READY"} for name, model in models.items()]
        )

    async def page(request):
        return HTMLResponse(html)

    async def favicon(request):
        return Response(status_code=204)

    async def metrics_route(request):
        return Response(metrics.render(), media_type=metrics.content_type)

    async def http_error(request, exc):
        return Response(
            protocol.error_body(exc.detail),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type="application/json",
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for batcher in batchers.values():
            batcher.start()
        yield
        # uvicorn runs this after the last request in flight has been answered.
        for batcher in batchers.values():
            await batcher.stop()

    routes = [
        Route("/", page),
        Route("/favicon.ico", favicon),
        Route("/metrics", metrics_route),
        Route("/v2", server_metadata),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/models/{name}", model_metadata),
        Route("/v2/models/{name}/ready", model_ready),
        # The protocol's optional version segment (tritonclient uses it when given a model_version).
        Route("/v2/models/{name}/versions/{version}", model_metadata),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    hot = HotPath(app, models, batchers, settings)
    guarded = RequireToken(hot, settings.token) if settings.token else hot
    # Observe is outermost, so refusals are logged too.
    return Observe(guarded, metrics, models, settings.quiet, settings.name_worker)
