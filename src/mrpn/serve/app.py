"""The `mrpn serve` web application: a page and a JSON API over the `mrpn predict` path.

    GET  /                 the page (plain HTML/JS/CSS from mrpn/serve/static, nothing from a CDN)
    GET  /api/health       {"status": "ok", "busy", "capacity", "models"}
    GET  /api/models       the models found, refused ones with the reason
    POST /api/predict      multipart field `file` (+ optional field or query `model`) -> the JSON
                           record `mrpn predict --json` writes for that file
    POST /api/plot         that JSON record -> the PNG `mrpn predict --plot` writes

Each upload goes to its own temporary folder that is removed when the request ends, whatever
happens. Predictions run in a thread pool of `workers` threads, so the event loop keeps answering
(health, other uploads) while one runs; at most `workers + queue` predict requests are admitted at
once, the others get 503 with Retry-After at once, before their upload is read.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mrpn.serve.models import ModelRegistry
from mrpn.serve.upload import UploadError, receive_upload


@dataclass
class ServeConfig:
    models_dir: str | None = None
    max_upload_mb: float = 200.0
    workers: int = 1
    queue: int = 2
    tmp_dir: str | None = None
    detector: str = "opencv"
    retry_after_s: int = 5


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _predict_sync(registry: ModelRegistry, model: str, path: Path, name: str) -> dict:
    """Runs in a worker thread: the same `Predictor.predict_file` as `mrpn predict`."""
    rec = registry.predictor(model).predict_file(str(path)).to_dict()
    rec["file"] = name
    rec["notes"] = [n.replace(str(path), name) for n in rec["notes"]]
    rec["model"] = model
    return rec


def _plot_sync(record: dict, folder: Path) -> bytes:
    from mrpn.inference.predict import plot_timeline

    out = folder / "timeline.png"
    plot_timeline(record, out)
    return out.read_bytes()


async def _predict_request(request: Request, cfg: ServeConfig, registry: ModelRegistry, pool, state: dict,
                           capacity: int, tmp_root: Path | None, max_bytes: int):
    """POST /api/predict: admit or 503, stream the upload to a private folder, predict in the pool,
    remove the folder whatever happens."""
    from mrpn.data.media import MediaError

    if state["busy"] >= capacity:
        state["refused_busy"] += 1
        return _error(503, f"busy: {state['busy']} predictions running or queued; retry later",
                      {"Retry-After": str(cfg.retry_after_s)})
    state["busy"] += 1
    folder = Path(tempfile.mkdtemp(prefix="mrpn-serve-", dir=tmp_root))
    try:
        up = await receive_upload(request, folder, max_bytes)
        model = request.query_params.get("model") or up.fields.get("model") or "default"
        entry = registry.entries.get(model)
        if entry is None:
            return _error(404, f"unknown model {model!r}; GET /api/models lists them")
        if not entry.ok:
            return _error(422, entry.error)
        try:
            rec = await asyncio.get_running_loop().run_in_executor(pool, _predict_sync, registry, model, up.path,
                                                                   up.name)
        except (MediaError, ValueError, FileNotFoundError) as e:
            msg = str(e).replace(str(up.path), up.name).replace(str(folder), "")
            return _error(415 if isinstance(e, MediaError) and "not a media file" in msg else 422, msg)
        state["served"] += 1
        return rec
    except UploadError as e:
        return _error(e.status, str(e))
    except Exception as e:  # never a traceback to the client; the message names the cause
        return _error(500, f"prediction failed: {type(e).__name__}")
    finally:
        state["busy"] -= 1
        shutil.rmtree(folder, ignore_errors=True)


def create_app(cfg: ServeConfig | None = None, registry: ModelRegistry | None = None):
    from mrpn import __version__

    cfg = cfg or ServeConfig()
    registry = registry or ModelRegistry(cfg.models_dir, detector=cfg.detector)
    pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="mrpn-predict")
    static = Path(str(resources.files("mrpn") / "serve" / "static"))
    max_bytes = int(cfg.max_upload_mb * 1e6)
    tmp_root = Path(cfg.tmp_dir) if cfg.tmp_dir else None
    state = {"busy": 0, "served": 0, "refused_busy": 0}
    capacity = cfg.workers + cfg.queue

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="mrpn", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.registry, app.state.pool, app.state.stats = registry, pool, state
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/")
    def index():
        return FileResponse(static / "index.html", media_type="text/html")

    @app.get("/api/health")
    def health():
        return {"status": "ok", "version": __version__, "busy": state["busy"], "capacity": capacity,
                "served": state["served"], "refused_busy": state["refused_busy"],
                "max_upload_mb": cfg.max_upload_mb, "models": [e.name for e in registry.entries.values() if e.ok]}

    @app.get("/api/models")
    def models():
        return {"models": registry.public(), "default": "default"}

    @app.post("/api/predict")
    async def predict(request: Request):
        return await _predict_request(request, cfg, registry, pool, state, capacity, tmp_root, max_bytes)

    @app.post("/api/plot")
    async def plot(request: Request):
        if state["busy"] >= capacity:  # drawing shares the CPU with predictions: the same bound
            return _error(503, "busy; retry later", {"Retry-After": str(cfg.retry_after_s)})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 8_000_000:
                return _error(413, "prediction JSON too large")
        try:
            rec = json.loads(body)
            for k in ("classes", "timeline", "label", "probabilities", "modalities_used", "duration_s", "file"):
                rec[k]  # noqa: B018  (KeyError -> 400)
        except (ValueError, KeyError, TypeError) as e:
            return _error(400, f"send the JSON of POST /api/predict ({type(e).__name__}: {e})")
        folder = Path(tempfile.mkdtemp(prefix="mrpn-plot-", dir=tmp_root))
        try:
            png = await asyncio.get_running_loop().run_in_executor(None, _plot_sync, rec, folder)
        except Exception as e:
            return _error(400, f"cannot plot this record ({type(e).__name__}: {e})")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Response(png, media_type="image/png")

    return app
