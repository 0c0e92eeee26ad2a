"""Measure the library's training throughput against plain torch and print the ratios.

Run from the repository root:

    .venv/bin/python benchmarks/throughput.py [--device cuda] [--json FILE]

The three ratios and their targets are described in
``parity_learning.throughput``. Timings are the best of ``--repeats``
repetitions of ``--steps`` steps, on one torch thread unless ``--threads``
sets another count.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from parity_learning.throughput import run, summary_lines

log = logging.getLogger("benchmarks.throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu",
                        help="torch device to measure on, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--steps", type=int, default=200,
                        help="training steps per timed repetition (default 200)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repetitions; the best one counts (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, 0 for torch's own choice (default 1, "
                             "as in a sweep worker process)")
    parser.add_argument("--json", default=None,
                        help="file to write the full report to, as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run(args.device, args.steps, args.repeats, args.threads)
    except (RuntimeError, ValueError) as error:
        log.error("benchmark failed: %s", error)
        return 1
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    sys.stdout.write("\n".join(summary_lines(report)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
