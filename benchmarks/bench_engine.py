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

try:
    from benchmarks.synth import synthetic_cluster
except ModuleNotFoundError:  # run as a script (python benchmarks/x.py): synth.py is next to it
    from synth import synthetic_cluster  # type: ignore[no-redef]
from conformance.netpol.simulator import Simulator

PORTS = [(8080, "TCP"), (9090, "TCP")]


def measure(
    pods: int, namespaces: int, policies: int, repeat: int, unique: bool = False
) -> tuple[float, float, float, int, int]:
    """Best wall seconds (build, matrix) and CPU seconds (both), the number of verdicts and of classes.

    ``unique``: the worst case, where a peer selector reads a label unique to each pod, so that no two
    pods are alike for the simulator.
    """
    cluster = synthetic_cluster(pods, namespaces, policies)
    if unique:
        for pod in cluster.pods:
            pod.labels["pod-id"] = pod.key.replace("/", ".")
        first = cluster.pods[0]
        peer = {"podSelector": {"matchLabels": {"pod-id": first.labels["pod-id"]}}}
        cluster.policies.append(
            {
                "metadata": {"name": "from-one-pod", "namespace": first.namespace},
                "spec": {"podSelector": {}, "ingress": [{"from": [peer]}]},
            }
        )
    best_build = best_matrix = best_cpu = float("inf")
    count = classes = 0
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        sim = Simulator(cluster)
        built = time.perf_counter()
        rows = sim.matrix(cluster.pods, cluster.pods, PORTS)
        counter = deque(enumerate(rows, 1), maxlen=1)  # consume without keeping 2M tuples
        done, done_cpu = time.perf_counter(), time.process_time()
        best_build = min(best_build, built - start)
        best_matrix = min(best_matrix, done - built)
        best_cpu = min(best_cpu, done_cpu - start_cpu)
        count = counter[0][0] if counter else 0
        # (peer class, egress profile) pairs: the rows the simulator really computes (private, for figures)
        classes = len({(sim._place(p).peer.index, sim._place(p).egress.index) for p in cluster.pods})
    return best_build, best_matrix, best_cpu, count, classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=60)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for policies, unique in ((args.policies, False), (args.policies * 10, False), (args.policies, True)):
        build, matrix, cpu, count, classes = measure(
            args.pods, args.namespaces, policies, args.repeat, unique
        )
        case = "worst case, a label unique to each pod: " if unique else ""
        print(
            f"{case}{args.pods} pods, {args.namespaces} namespaces, {policies} policies, {len(PORTS)} ports: "
            f"{count:,} verdicts ({classes} source classes); build {build:.3f} s, matrix {matrix:.3f} s, "
            f"total {build + matrix:.3f} s (CPU {cpu:.3f} s), {count / (build + matrix):,.0f} verdicts/s"
        )


if __name__ == "__main__":
    main()
