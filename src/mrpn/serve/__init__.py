"""`mrpn serve`: a local web page and JSON API for emotion prediction on uploaded or recorded video.

See `mrpn.serve.app` for the routes and docs/INFERENCE.md for usage. Needs the `serve` extra
(FastAPI, uvicorn, python-multipart).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models", help="folder searched for .safetensors models and .pt checkpoints (recursively)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload (default 200 MB)")
    p.add_argument("--workers", type=int, default=1, help="predictions run at the same time (threads)")
    p.add_argument("--queue", type=int, default=2, help="further requests that may wait; more get 503")
    p.add_argument("--detector", default="opencv", help="face detector: opencv, dlib-hog, dlib-cnn, none")
    p.add_argument("--tmp-dir", help="where uploads are kept while predicted (default: the system's)")


def main(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mrpn.serve.app import ServeConfig, create_app
    except ImportError as e:
        print(f"mrpn serve: error: {e.name} is missing; install with: pip install 'mrpn[serve]'", file=sys.stderr)
        return 2
    if args.workers < 1 or args.queue < 0 or args.max_upload_mb <= 0 or not 0 < args.port < 65536:
        print("mrpn serve: error: --workers >= 1, --queue >= 0, --max-upload-mb > 0, 0 < --port < 65536",
              file=sys.stderr)
        return 2
    cfg = ServeConfig(models_dir=args.models, max_upload_mb=args.max_upload_mb, workers=args.workers,
                      queue=args.queue, tmp_dir=args.tmp_dir, detector=args.detector)
    try:
        app = create_app(cfg)
    except FileNotFoundError as e:
        print(f"mrpn serve: error: {e}", file=sys.stderr)
        return 2
    for e in app.state.registry.entries.values():
        print(f"model {e.name}: {e.kind} {len(e.classes)} classes" if e.ok else e.error, file=sys.stderr)
    print(f"mrpn serve: http://{args.host}:{args.port}/  (Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
