"""Time one training step of DFA against backpropagation and print the ratios.

Run from the repository root:

    .venv/bin/python benchmarks/dfa_step.py            # the sizes of the book
    .venv/bin/python benchmarks/dfa_step.py --threads 1 --rules bp fa dfa

A step is a forward pass, the BCE loss, the rule's updates and an SGD update
of an MLP with ReLU hidden layers and one output unit, on one fixed batch.
The rules take turns step by step and the table reports medians, so a ratio
compares measurements taken under the same load. The target is DFA at or
below BP at 4 hidden layers.
"""

from __future__ import annotations

import argparse
import platform

import torch

from parity_learning.benchmarks import compare_step_times
from parity_learning.results import markdown_table


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4],
                        help="numbers of hidden layers to time (default: 1 2 4)")
    parser.add_argument("--width", type=int, default=512, help="units per hidden layer")
    parser.add_argument("--batch-size", type=int, default=128, help="examples per step")
    parser.add_argument("--rules", nargs="+", default=["bp", "dfa"],
                        help="learning rules to time; bp is the baseline")
    parser.add_argument("--repeats", type=int, default=100, help="timed steps per rule and depth")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per rule and depth")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, feedback and batch")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rules = list(dict.fromkeys(["bp", *args.rules]))
    table = compare_step_times(
        rules, depths=args.depths, width=args.width, batch_size=args.batch_size,
        repeats=args.repeats, warmup=args.warmup, seed=args.seed, device=args.device,
    )
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    print(markdown_table(table))
    deepest = table.loc[table["hidden layers"].idxmax()]
    if "dfa/bp" in table:
        ratio = float(deepest["dfa/bp"])
        verdict = "met" if ratio <= 1.0 else "missed"
        print(f"DFA/BP at {int(deepest['hidden layers'])} hidden layers: {ratio:.3f} "
              f"(target <= 1: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
