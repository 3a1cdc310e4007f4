"""Benchmark of the simulator alone: the all-pairs matrix of a synthetic cluster.

Requirement (issue 2, section 5): 1,000 pods x 2 ports, about 2 million verdicts, in <= 1 s on a
2-core machine; the cost grows with the number of verdicts, not with verdicts x policies. The second
part shows the latter: the same pods under 10x more policies.

    .venv/bin/python benchmarks/bench_engine.py [--pods 1000] [--namespaces 60] [--policies 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import deque

from benchmarks.synth import synthetic_cluster
from conformance.simulator import Simulator

PORTS = [(8080, "TCP"), (9090, "TCP")]


def measure(pods: int, namespaces: int, policies: int, repeat: int) -> tuple[float, float, int, int]:
    """Best (build seconds, matrix seconds), the number of verdicts and of source classes."""
    cluster = synthetic_cluster(pods, namespaces, policies)
    best_build = best_matrix = float("inf")
    count = classes = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        sim = Simulator(cluster)
        built = time.perf_counter()
        rows = sim.matrix(cluster.pods, cluster.pods, PORTS)
        counter = deque(enumerate(rows, 1), maxlen=1)  # consume without keeping 2M tuples
        done = time.perf_counter()
        best_build = min(best_build, built - start)
        best_matrix = min(best_matrix, done - built)
        count = counter[0][0] if counter else 0
        # (peer class, egress profile) pairs: the rows the simulator really computes (private, for figures)
        classes = len({(sim._place(p).peer.index, sim._place(p).egress.index) for p in cluster.pods})
    return best_build, best_matrix, count, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=60)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for policies in (args.policies, args.policies * 10):
        build, matrix, count, classes = measure(args.pods, args.namespaces, policies, args.repeat)
        print(
            f"{args.pods} pods, {args.namespaces} namespaces, {policies} policies, {len(PORTS)} ports: "
            f"{count:,} verdicts ({classes} source classes); build {build:.3f} s, matrix {matrix:.3f} s, "
            f"total {build + matrix:.3f} s, {count / (build + matrix):,.0f} verdicts/s"
        )


if __name__ == "__main__":
    main()
