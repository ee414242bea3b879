"""`clickgauss-backend` command line: one subcommand module per part of the engine.

Each part registers its own subcommands (`register(subparsers)`) so the parser stays in one place
while the commands live beside the code they drive.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from clickgauss_core.errors import ClickGaussInputError

# Modules that define `register(subparsers)`; each adds its subcommands with a `func` default.
COMMAND_MODULES = (
    "clickgauss_backend.synthetic.commands",  # synth
    "clickgauss_backend.features.commands",   # train, click, segment-all
    "clickgauss_backend.views.commands",      # views
    "clickgauss_backend.server.commands",     # serve
    "clickgauss_backend.demo.commands",       # demo-plan, demo-report (run-demo)
    "clickgauss_backend.render.commands",     # render-colors (reference pictures)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickgauss-backend",
                                     description="ClickGauss backend: train and query Click-Gaussian feature fields.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ClickGaussInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
