"""How fast an alias bomb is refused (issue 8, item 6), and what the guard costs a legitimate snapshot.

The bomb is the issue's: a values file of about 500 bytes whose ``allowedNamespaces`` is eight levels
of nine nested aliases (43 million strings once expanded). Before the guard, ``gim-netpol render
--values`` on it ran past 60 s and 650 MiB. Each reader is timed in a fresh process, as a user runs it.

    .venv/bin/python benchmarks/bench_yaml_aliasing.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from conformance.netpol import yaml_guard

try:
    from benchmarks.bench_cli import cli
    from benchmarks.synth import synthetic_objects
except ModuleNotFoundError:  # run as a script (python benchmarks/x.py): the modules are next to it
    from bench_cli import cli  # type: ignore[no-redef]
    from synth import synthetic_objects  # type: ignore[no-redef]

LEVELS = "abcdefgh"
FANOUT = 9


def bomb(item: str, indent: str = "") -> list[str]:
    lines = [f"{indent}{LEVELS[0]}: &{LEVELS[0]} [" + ", ".join([item] * FANOUT) + "]"]
    for previous, level in zip(LEVELS, LEVELS[1:], strict=False):
        lines.append(f"{indent}{level}: &{level} [" + ", ".join([f"*{previous}"] * FANOUT) + "]")
    return lines


def files(workdir: Path) -> dict[str, tuple[Path, list[str]]]:
    last = LEVELS[-1]
    values = workdir / "values.yaml"
    plain_values = workdir / "plain-values.yaml"
    plain_values.write_text("networkPolicy: {enabled: true, mode: enforce}\n")
    values.write_text(
        "\n".join(
            [*bomb("team-ns"), "networkPolicy:", "  enabled: true", f"  allowedNamespaces: *{last}", ""]
        )
    )
    snapshot = workdir / "snap.yaml"
    snapshot.write_text(
        "\n".join(
            ["apiVersion: v1", "kind: List", "metadata:", *bomb("{kind: Pod}", "  "), f"items: *{last}", ""]
        )
    )
    return {
        "values (render --values)": (values, ["render", "--values", str(values), "--namespace", "gim"]),
        "manifests (plan --manifests)": (
            snapshot,
            ["plan", "--values", str(plain_values), "--manifests", str(snapshot)],
        ),
        "snapshot (simulate)": (snapshot, ["simulate", str(snapshot)]),
        "snapshot (verify --snapshot)": (
            snapshot,
            ["verify", "--gim-namespace", "gim", "--snapshot", str(snapshot)],
        ),
    }


def run_child(argv: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gim-netpol-bench-") as tmp:
        workdir = Path(tmp)
        baseline = min(run_child([*cli(), "--help"])[0] for _ in range(args.repeat))
        print(f"`gim-netpol --help` (interpreter start and imports): {baseline:.3f} s")
        for what, (path, argv) in files(workdir).items():
            runs = [run_child([*cli(), *argv]) for _ in range(args.repeat)]
            best, code, err = min(runs)
            print(f"{what}: {path.stat().st_size} bytes, exit {code}, best {best:.3f} s wall: {err}")
        values_text = (workdir / "values.yaml").read_text()
        start = time.perf_counter()
        try:
            yaml_guard.load_first(values_text, "values.yaml")
        except Exception as exc:  # noqa: BLE001 (the refusal is what is timed)
            print(f"the guard alone, in process: {1000 * (time.perf_counter() - start):.2f} ms ({exc})")
        # What the guard costs a legitimate file that uses anchors: 1,000 pods as YAML, one alias each.
        objects = synthetic_objects(1000, 60, 200)
        text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}, sort_keys=False)
        text = text.replace("apiVersion: v1\nkind: Pod", "apiVersion: &v1 v1\nkind: Pod", 1)
        text = text.replace("apiVersion: v1\nkind: Pod", "apiVersion: *v1\nkind: Pod")
        loader = yaml_guard.SAFE_LOADER
        start = time.perf_counter()
        plain = list(yaml.load_all(text, Loader=loader))
        unguarded = time.perf_counter() - start
        start = time.perf_counter()
        guarded = list(yaml_guard.load_all(text, loader, "snap.yaml"))
        with_guard = time.perf_counter() - start
        assert guarded == plain
        without_alias = text.replace("*v1", "v1")
        start = time.perf_counter()
        list(yaml_guard.load_all(without_alias, loader, "snap.yaml"))
        no_alias = time.perf_counter() - start
        print(
            f"1,000-pod YAML snapshot with aliases ({len(text) / 1e6:.1f} MB): load {unguarded:.2f} s,"
            f" with the guard {with_guard:.2f} s; the same without aliases (no walk) {no_alias:.2f} s"
        )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"largest peak RSS of the children: {peak:.0f} MiB")
    sys.exit(0)


if __name__ == "__main__":
    main()
