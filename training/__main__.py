"""``python -m training`` = ``stylekit train``; made for ``torchrun --nproc_per_node N -m training ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sdk.errors import StylekitError
from training.commands import train as cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description="train a new style")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    cli.configure(parser)
    args = parser.parse_args(argv)
    # Only rank 0 talks; the other ranks report errors only.
    rank = int(os.environ.get("RANK", "0"))
    level = logging.WARNING - 10 * min(args.verbose, 2) if rank == 0 else logging.ERROR
    logging.basicConfig(level=level, format=f"%(levelname)s [rank {rank}] %(name)s: %(message)s")
    try:
        return cli.run(args)
    except StylekitError as exc:
        print(f"stylekit: error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
