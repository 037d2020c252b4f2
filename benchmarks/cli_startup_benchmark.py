"""Start-up time of the ``kerastl`` command: ``kerastl --help`` and ``kerastl backbones``.

Each command runs `--repeats` times in a fresh process (the installed
console script, else ``python -m kerastl.cli``); the table gives the median
and the fastest wall-clock time, whether TensorFlow was imported and how
many log lines reached stderr. Prints one JSON line, then the table.

Usage:
    python benchmarks/cli_startup_benchmark.py [--repeats 5] [--target 1.0]

Example:
    $ python benchmarks/cli_startup_benchmark.py --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from kerastl.cli.common import kerastl_command

COMMANDS = (("--help",), ("backbones",), ("backbones", "mobilenet_v2", "--json"))
LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::|cpu_feature_guard|cudart_stub", re.MULTILINE)




def time_command(args, repeats: int) -> dict:
    """Runs ``kerastl ARGS`` `repeats` times; returns the timings and what it printed."""
    seconds, log_lines = [], 0
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([*kerastl_command(), *args], capture_output=True, text=True,
                              env=env, timeout=300)
        seconds.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"kerastl {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        log_lines = max(log_lines, len(LOG_LINE.findall(proc.stderr)))
    code = "import sys, kerastl.cli; print('tensorflow' in sys.modules)"
    return {"command": "kerastl " + " ".join(args), "median_s": statistics.median(seconds),
            "min_s": min(seconds), "runs": repeats, "log_lines": log_lines,
            "help_imports_tensorflow": subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
            == "True" if args == ("--help",) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.0,
                        help="Target for `kerastl --help`, seconds.")
    args = parser.parse_args()
    # One untimed run so that every timed run sees warm file caches.
    subprocess.run([*kerastl_command(), "backbones"], capture_output=True, timeout=300)
    rows = [time_command(c, args.repeats) for c in COMMANDS]
    help_row = rows[0]
    result = {"benchmark": "cli_startup", "date": datetime.datetime.now(
        datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python "
                   f"{platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 2), "rows": rows,
        "target_help_s": args.target, "help_meets_target": help_row["median_s"] <= args.target}
    print(json.dumps(result))
    print()
    print("| command | median s | fastest s | runs | log lines on stderr |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['command']}` | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['runs']} | "
              f"{r['log_lines']} |")
    print(f"\n`kerastl --help` target <= {args.target:.1f} s: "
          f"{'met' if result['help_meets_target'] else 'NOT met'}; load average "
          f"{result['load_average_1min']} on {os.cpu_count()} cores; TensorFlow imported by "
          f"`import kerastl.cli`: {help_row['help_imports_tensorflow']}")


if __name__ == "__main__":
    main()
