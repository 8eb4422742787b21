"""``python -m benchmarks [--quick] [--accuracy] [--traces N] [--samples N]`` (from the repo root).

Prints the speed table of ``formats/measures.md`` (default: 100,000 x 1,000 float32 traces, a
couple of minutes on 2 cores); ``--accuracy`` prints the accuracy table (ncsproc vs the peer)
instead; ``--quick`` runs a tiny version of either, to prove the script works (CI smoke).
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--accuracy", action="store_true", help="accuracy table instead of speed")
    parser.add_argument("--traces", type=int, default=None, help="number of traces (speed)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per trace (speed)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args(argv)

    src = Path(__file__).resolve().parents[1] / "src"
    if src.is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))
    import ncsproc
    import ncsproc.kernels as K

    print(
        f"ncsproc {ncsproc.__version__}, numba disabled: {K.NUMBA_DISABLED}, "
        f"python {platform.python_version()}, {platform.machine()}"
    )
    if args.accuracy:
        from . import accuracy

        if args.quick:
            rows = accuracy.run(n=30, peer_n=10)
        else:
            rows = accuracy.run()
        print(accuracy.format_rows(rows))
        return 0

    from . import bench_measure

    if args.quick:
        rows = bench_measure.run(
            n_traces=args.traces or 400,
            n_samples=args.samples,
            unique=40,
            twin_subset=5,
            peer_subset=5,
            repeat=1,
        )
    else:
        rows = bench_measure.run(
            n_traces=args.traces or 100_000, n_samples=args.samples, repeat=args.repeat
        )
    print(bench_measure.format_rows(rows))
    print(
        "traces per second (kernel, 1 thread): "
        f"{dict((r[0], r[1]) for r in rows)['kernel traces per second, 1 thread']:,.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
