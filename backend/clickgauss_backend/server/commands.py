"""`clickgauss-backend serve`: run the HTTP service (docs/protocol.md) with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from clickgauss_core.protocol import DEFAULT_PORT, TOKEN_ENV

from .settings import (DEFAULT_MAX_JSON_KB, DEFAULT_MAX_UPLOAD_MB, LOOPBACK_HOST_NAMES, ServerSettings,
                       default_cache_dir, is_loopback)

# After SIGTERM / Ctrl-C: how long open requests may take to finish (a half-sent upload would
# otherwise hold the process forever). Training is told to stop at once, not after this.
SHUTDOWN_GRACE_S = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the HTTP service the Blender add-on talks to",
                                   description="Run the ClickGauss HTTP service (API under /v1, schema at /openapi.json).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--token", default=None,
                        help=f"require 'Authorization: Bearer TOKEN' on every request (or set {TOKEN_ENV})")
    parser.add_argument("--data-root", dest="data_roots", action="append", type=Path, default=None, metavar="DIR",
                        help="folder the server may open files from (repeatable; default: your home folder)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"where scenes, masks, feature fields and jobs are kept (default {default_cache_dir()})")
    parser.add_argument("--device", choices=("cuda", "cpu", "auto"), default="auto")
    parser.add_argument("--sam-checkpoint", type=Path, default=None, metavar="FILE",
                        help="Segment Anything checkpoint, enables mask source 'sam'")
    parser.add_argument("--sam-model", default="vit_h", choices=("vit_h", "vit_l", "vit_b"))
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="N",
                        help=f"largest accepted upload in MB (default {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--max-json-kb", type=float, default=DEFAULT_MAX_JSON_KB, metavar="N",
                        help=f"largest accepted JSON request body in KB (default {DEFAULT_MAX_JSON_KB:g})")
    parser.add_argument("--allowed-host", dest="allowed_hosts", action="append", default=None, metavar="NAME",
                        help="a host name requests may address this server by, besides localhost, 127.0.0.1 and [::1] "
                             "(repeatable; on a non-loopback address, enables the Host check with these names)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        print(f"error: refusing to listen on {args.host} without a token: anyone on the network could use "
              f"this server. Pass --token or set {TOKEN_ENV}, or bind 127.0.0.1.", file=sys.stderr)
        return 2
    if args.max_upload_mb <= 0 or args.max_json_kb <= 0:
        print("error: --max-upload-mb and --max-json-kb must be positive", file=sys.stderr)
        return 2
    roots = args.data_roots or [Path.home()]
    for root in roots:
        if not root.expanduser().is_dir():
            print(f"error: --data-root {root}: no such folder", file=sys.stderr)
            return 2
    if args.sam_checkpoint is not None and not args.sam_checkpoint.expanduser().is_file():
        print(f"error: --sam-checkpoint {args.sam_checkpoint}: no such file", file=sys.stderr)
        return 2
    settings = ServerSettings(cache_dir=args.cache_dir or default_cache_dir(), data_roots=roots, token=token,
                              device=args.device, sam_checkpoint=args.sam_checkpoint, sam_model=args.sam_model,
                              max_upload_mb=args.max_upload_mb, max_json_kb=args.max_json_kb,
                              allowed_hosts=allowed_host_names(args.host, args.allowed_hosts))

    from .app import create_app

    try:
        app = create_app(settings)
    except ValueError as exc:  # e.g. --device cuda without CUDA
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    StoppingServer(config, on_exit=app.state.jobs.request_stop).run()
    return 0


def allowed_host_names(bind: str, extra: list[str] | None) -> list[str] | None:
    """The Host names a server bound to `bind` answers to; None (no check) on a public bind
    without --allowed-host, where the token guards it."""
    if not is_loopback(bind) and not extra:
        return None
    own = f"[{bind}]" if ":" in bind else bind
    return sorted({*LOOPBACK_HOST_NAMES, own, *(extra or [])})


class StoppingServer(uvicorn.Server):
    """uvicorn's server that also tells training to stop as soon as a stop signal arrives.

    uvicorn waits for open requests before it runs the app's shutdown: without this, a training
    ran on to "done" behind a half-sent upload instead of stopping as "interrupted"."""

    def __init__(self, config: uvicorn.Config, on_exit):
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig, frame):
        self.on_exit()
        super().handle_exit(sig, frame)
