"""`python -m uoom_orders_chaos`: the fault-injection command."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from uoom_orders_chaos.options import FAULTS, SHORT_FAULTS, RunOptions
from uoom_orders_chaos.report import as_json, format_table
from uoom_orders_chaos.runner import run

# --short: a run for CI, well under two minutes on a 2-core machine.
SHORT = {"fault_seconds": 3.0, "steady_seconds": 2.0, "settle_timeout": 20.0}


def _faults(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if raw.strip() == "all":
        return FAULTS
    unknown = [n for n in names if n not in FAULTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"faults are a comma list of: all, {', '.join(FAULTS)}")
    return names


def _env_pair(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("give NAME=VALUE")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_chaos",
        description=(
            "Runs the service as separate processes (2 API replicas, 2 relays, 2 projectors) on "
            "a local stack, drives writes and reads, injects faults one at a time and prints, "
            "per fault: client errors by code, acknowledged and lost writes, reads that went "
            "back in time, time to converge and final differences. Exits 1 when a fault misses "
            "a target (0 lost, 0 same-replica and client regressions, 0 final differences, "
            "convergence within 5 s)."
        ),
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=None,
        help=f"comma list, or 'all' (default: all; with --short: {','.join(SHORT_FAULTS)}). "
        f"Known: {', '.join(FAULTS)}",
    )
    parser.add_argument(
        "--fault-seconds", type=float, default=None, help="how long each fault lasts (default 8)"
    )
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=None,
        help="steady load before each fault (default 5)",
    )
    parser.add_argument(
        "--write-rate", type=float, default=30.0, help="writes per second (default 30)"
    )
    parser.add_argument(
        "--read-rate", type=float, default=240.0, help="read calls per second (default 240)"
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=None,
        help="seconds to wait for agreement after a fault lifts (default 30)",
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="the CI run: 3 s faults, 2 s of steady load, 20 s settle timeout, "
        f"and by default only {', '.join(SHORT_FAULTS)}",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--log-dir", type=Path, help="folder for the processes' logs (default: new, under /tmp)"
    )
    parser.add_argument(
        "--keep-stack",
        action="store_true",
        help="keep the stack's data and server logs (PostgreSQL, tansu, moto) in the log folder",
    )
    parser.add_argument(
        "--service-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every role process (repeatable)",
    )
    return parser


def options_from_args(args: argparse.Namespace) -> RunOptions:
    short = SHORT if args.short else {}
    defaults = RunOptions()

    def pick(name: str) -> float:
        given: float | None = getattr(args, name)
        if given is not None:
            return given
        value: float = short.get(name, getattr(defaults, name))
        return value

    faults = args.faults or (SHORT_FAULTS if args.short else defaults.faults)
    return RunOptions(
        faults=faults,
        fault_seconds=pick("fault_seconds"),
        steady_seconds=pick("steady_seconds"),
        write_rate=args.write_rate,
        read_rate=args.read_rate,
        settle_timeout=pick("settle_timeout"),
        log_dir=args.log_dir,
        keep_stack=args.keep_stack,
        service_env=dict(args.service_env),
        json_path=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    import uvloop

    result = uvloop.run(run(options))
    target = options.convergence_target
    print()
    print(format_table(result.reports, target))
    print(f"logs: {result.log_dir}; run took {result.seconds:.0f} s")
    figures = as_json(
        result.reports,
        target,
        {
            "command": "python -m uoom_orders_chaos",
            "argv": list(sys.argv[1:] if argv is None else argv),
            "options": {
                "faults": list(options.faults),
                "fault_seconds": options.fault_seconds,
                "steady_seconds": options.steady_seconds,
                "write_rate": options.write_rate,
                "read_rate": options.read_rate,
                "settle_timeout": options.settle_timeout,
                "service_env": dict(options.service_env),
            },
            "machine": {
                "cpu_count": os.cpu_count(),
                "load_average": os.getloadavg(),
                "python": platform.python_version(),
            },
            "log_dir": str(result.log_dir),
            "seconds": result.seconds,
        },
    )
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(figures, indent=2) + "\n")
    passed = bool(figures["passed"])
    print("PASS: every fault met every target" if passed else "FAIL: see the verdicts above")
    return 0 if passed else 1
