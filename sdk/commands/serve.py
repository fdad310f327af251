"""``stylekit serve start|status|stop``: a local TorchServe for the archives in a model store.

The command's options and output; the work is :mod:`sdk.serving.server`'s.
"""

from __future__ import annotations

import argparse
import json
import sys

from sdk.serving.server import start, status, stop


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_help = "folder for this server's config, logs, temp files and tokens (default $STYLEKIT_HOME/serve)"
    p_start = sub.add_parser("start", help="start TorchServe in the background and wait until it is healthy")
    p_start.add_argument("--config", help="TorchServe config.properties (default: the one stylekit ships)")
    p_start.add_argument(
        "--model-store", help="folder with the .mar files (default: the config's model_store)"
    )
    p_start.add_argument("--models", default="all", help="'all' or a comma list of archive names")
    p_start.add_argument("--gpu", action="store_true", help="use the visible GPUs (default: CPU only)")
    p_start.add_argument(
        "--port", type=int, help="inference port; management, metrics, gRPC use the next four"
    )
    p_start.add_argument("--worker-port", type=int, help="first port of the Python workers")
    p_start.add_argument("--run-dir", help=run_help)
    p_start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    for name, text in (
        ("status", "show whether the server runs and its models"),
        ("stop", "stop the server"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--run-dir", help=run_help)


def run(args: argparse.Namespace) -> int:
    if args.action == "start":
        state = start(
            config=args.config, model_store=args.model_store, models=args.models, gpu=args.gpu,
            port=args.port, worker_port=args.worker_port, run_dir=args.run_dir, timeout=args.timeout,
            progress=lambda message: print(f"stylekit: {message}", file=sys.stderr, flush=True),
        )  # fmt: skip
        print(f"TorchServe is serving {', '.join(state.models)} at {state.inference_url}")
        print(f"management {state.management_url}, metrics {state.metrics_url}; tokens in {state.key_file}")
        return 0
    if args.action == "status":
        info = status(args.run_dir)
        print(json.dumps(info, indent=2))
        return 0 if info["running"] else 1
    stopped = stop(run_dir=args.run_dir)
    print("TorchServe stopped." if stopped else "No server was running.")
    return 0
