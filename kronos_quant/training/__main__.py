"""``python -m kronos_quant.training CONFIG.yaml [--set key.path=value ...] [--quiet]``.

The same as ``kronos-quant finetune CONFIG.yaml``; under ``torchrun --nproc_per_node=N -m
kronos_quant.training CONFIG.yaml`` every process runs it and rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kronos_quant.errors import KronosQuantError
from kronos_quant.training.run import run_finetune


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kronos_quant.training", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="finetune YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set predictor_training.steps=10 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run_finetune(args.config, overrides=args.overrides or None, quiet=args.quiet)
    except KronosQuantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"best checkpoint: {result.best_dir}" + (f" (exported to {result.export_dir})" if result.export_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
