"""`gim-netpol simulate`: a snapshot in, every probe's verdict out, as truth tables or one JSON object."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.commands.cli import main
from conformance.netpol.model import NAME_LABEL

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
# As in the upstream e2e tests: every pod serves 80/TCP and 81/UDP under named ports.
PORTS = [
    {"containerPort": 80, "name": "serve-80-tcp", "protocol": "TCP"},
    {"containerPort": 81, "name": "serve-81-udp", "protocol": "UDP"},
]


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAME_LABEL: name, "ns": name}},
    }


def pod(ns: str, name: str, ip: str | None, ports: list[dict] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running" if ip else "Pending"}
    if ip:
        status["podIP"] = ip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
        "spec": {
            "containers": [
                {"name": "cont-80-81", "image": "agnhost:2.52", "ports": PORTS if ports is None else ports}
            ],
            "nodeName": "kind-worker",
        },
        "status": status,
    }


# x/* accept port 80 from namespace y only; everything else in x is isolated for ingress.
ALLOW_X_FROM_Y = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-80-from-y", "namespace": "x"},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}], "ports": [{"port": 80}]}],
    },
}


def expected(src: str, dst: str, port: int) -> bool:
    """What ALLOW_X_FROM_Y means, written from the API reference."""
    return not dst.startswith("x/") or (src.startswith("y/") and port == 80)


def kubectl_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}}


def xyz_objects() -> list[dict[str, Any]]:
    objects = [namespace(ns) for ns in NAMESPACES]
    for i, (ns, name) in enumerate(product(NAMESPACES, PODS)):
        objects.append(pod(ns, name, f"10.244.{i // 3}.{10 + i}"))
    objects.append(ALLOW_X_FROM_Y)
    objects.append(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "x"}}
    )
    return objects


ALL_PODS = [f"{ns}/{name}" for ns, name in product(NAMESPACES, PODS)]


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    path = tmp_path / "snap.yaml"
    path.write_text(yaml.safe_dump(kubectl_list(*xyz_objects())))
    return str(path)


def simulate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def probes_of(out: str) -> list[dict[str, Any]]:
    data = json.loads(out)
    assert list(data) == ["probes"]
    return data["probes"]


def test_json_probes_every_pair_on_every_declared_port(snapshot: str, capsys: pytest.CaptureFixture) -> None:
    code, out, err = simulate(capsys, snapshot, "-o", "json")
    assert code == 0
    assert err == "gim-netpol: note: skipped 1 ConfigMap object\n"
    probes = probes_of(out)
    seen = {(p["from"], p["to"], p["port"], p["protocol"]) for p in probes}
    assert len(seen) == len(probes)
    pairs = [(s, d) for s in ALL_PODS for d in ALL_PODS if s != d]
    assert seen == {(s, d, port, proto) for s, d in pairs for port, proto in ((80, "TCP"), (81, "UDP"))}
    for p in probes:
        assert set(p) == {"from", "to", "port", "protocol", "allowed", "reason"}
        assert p["allowed"] is expected(p["from"], p["to"], p["port"]), p
        if p["to"].startswith("x/"):
            assert "x/allow-80-from-y" in p["reason"], p


def test_port_specs(snapshot: str, capsys: pytest.CaptureFixture) -> None:
    for spec, port, proto in (("80", 80, "TCP"), ("81/udp", 81, "UDP"), ("serve-81-udp", 81, "UDP")):
        code, out, _ = simulate(capsys, snapshot, "--port", spec, "-o", "json")
        assert code == 0
        probes = probes_of(out)
        assert {(p["port"], p["protocol"]) for p in probes} == {(port, proto)}
        assert len(probes) == 9 * 8
    # a port nobody declares is still probed by number (and blocked where isolated)
    code, out, _ = simulate(capsys, snapshot, "--port", "8080", "--port", "80/TCP", "-o", "json")
    probes = probes_of(out)
    assert {p["port"] for p in probes} == {80, 8080}
    assert all(p["allowed"] is expected(p["from"], p["to"], p["port"]) for p in probes)


def test_from_and_to_filters(snapshot: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = simulate(capsys, snapshot, "--from", "y", "--to", "x/a", "--port", "80", "-o", "json")
    assert code == 0
    assert [(p["from"], p["to"], p["allowed"]) for p in probes_of(out)] == [
        ("y/a", "x/a", True),
        ("y/b", "x/a", True),
        ("y/c", "x/a", True),
    ]
    code, out, _ = simulate(
        capsys, snapshot, "--from", "z/c", "--to", "x", "--to", "z", "--port", "80", "-o", "json"
    )
    assert {(p["to"], p["allowed"]) for p in probes_of(out)} == {
        ("x/a", False),
        ("x/b", False),
        ("x/c", False),
        ("z/a", True),
        ("z/b", True),
    }


def test_tables_one_per_port_and_protocol(snapshot: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = simulate(capsys, snapshot)
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["port 80/TCP", "port 81/UDP"]
    for block, port in zip(blocks, (80, 81), strict=True):
        lines = block.splitlines()
        header, rows = lines[1], lines[2:11]
        columns = [int(n) for n in header.split()]
        assert columns == list(range(1, 10))
        for row in rows:
            number, src, *cells = row.split()
            assert ALL_PODS[int(number) - 1] == src
            for dst, mark in zip(ALL_PODS, cells, strict=True):
                want = "-" if dst == src else "." if expected(src, dst, port) else "X"
                assert mark == want, (port, src, dst)


def test_multi_document_stream_from_stdin(snapshot: str) -> None:
    stream = yaml.safe_dump_all(xyz_objects())
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "simulate", "-", "--from", "z/a", "--port", "80", "-o", "json"],
        input=stream,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p["to"]: p["allowed"] for p in probes_of(done.stdout)} == {
        d: expected("z/a", d, 80) for d in ALL_PODS if d != "z/a"
    }


def test_rendered_policies_and_a_snapshot_in_two_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The README's flow: render the values, then simulate them against the cluster's pods."""
    values = tmp_path / "values.yaml"
    values.write_text(
        "networkPolicy:\n  enabled: true\n  mode: enforce\n  allowedNamespaces: [ingress-nginx]\n"
    )
    assert main(["render", "--values", str(values), "--namespace", "gim"]) == 0
    policies = tmp_path / "policies.yaml"
    policies.write_text(capsys.readouterr().out)
    pods = tmp_path / "pods.json"
    pods.write_text(
        json.dumps(
            kubectl_list(
                pod("gim", "nginx", "10.244.1.2", [{"containerPort": 8080, "name": "http"}]),
                pod("gim", "worker", "10.244.1.3", []),
                pod("ingress-nginx", "controller", "10.244.2.2", []),
                pod("default", "curl", "10.244.2.3", []),
            )
        )
    )
    code, out, _ = simulate(capsys, str(pods), str(policies), "--to", "gim/nginx", "-o", "json")
    assert code == 0
    assert {(p["from"], p["port"]): p["allowed"] for p in probes_of(out)} == {
        ("gim/worker", 8080): True,
        ("ingress-nginx/controller", 8080): True,
        ("default/curl", 8080): False,
    }


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gim-netpol: error: "), err
    assert "Traceback" not in err
    return err[len("gim-netpol: error: ") : -1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "--port: '0': a port number is from 1 to 65535"),
        (["--port", "80/ICMP"], "--port: '80/ICMP': protocol must be one of TCP, UDP, SCTP, got 'ICMP'"),
        (["--port", "Serve_80"], "--port: 'Serve_80': expected PORT, PORT/PROTO or a container port name"),
        (["--port", "metrics"], "--port: unknown port name 'metrics': no destination pod declares it"),
        (["--port", "serve-80-tcp/UDP"], "--port: unknown port name 'serve-80-tcp/UDP'"),
        (["--from", "x/a/b"], "--from: expected NS or NS/POD (Kubernetes names), got 'x/a/b'"),
        (["--to", "X"], "--to: expected NS or NS/POD"),
        (["--to", "w"], "--to: no namespace w in the snapshot"),
        (["--from", "x/d"], "--from: no pod x/d in the snapshot"),
    ],
)
def test_bad_options(snapshot: str, capsys: pytest.CaptureFixture, argv: list[str], message: str) -> None:
    code, out, err = simulate(capsys, snapshot, *argv)
    assert one_line_error(code, err).startswith(message)
    assert out == ""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_bad_snapshots_name_the_file_and_object(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert one_line_error(*simulate(capsys, missing)[::2]).startswith(f"{missing}: cannot read the snapshot")

    bad_yaml = write(tmp_path, "bad.yaml", "kind: List\nitems:\n  - kind: Pod\n   metadata: {}\n")
    assert one_line_error(*simulate(capsys, bad_yaml)[::2]).startswith(f"{bad_yaml}: invalid YAML at line 4")

    nameless = pod("x", "a", "10.0.0.1")
    del nameless["metadata"]["name"]
    path = write(tmp_path, "nameless.json", json.dumps(kubectl_list(nameless)))
    assert (
        one_line_error(*simulate(capsys, path)[::2]) == f"{path}: Pod/x/<unnamed>: metadata.name is required"
    )


def test_a_pod_without_ip_is_left_out_with_a_note_even_where_an_ipblock_needs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cidr_policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "from-cidr", "namespace": "x"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
    }
    policies = write(tmp_path, "policies.yaml", yaml.safe_dump(cidr_policy))
    pending = pod("z", "c", None)
    objects = [pod("x", "a", "10.1.0.1"), pod("y", "b", "192.168.0.1"), pod("z", "d", "10.2.0.1"), pending]
    pods = write(tmp_path, "pods.yaml", yaml.safe_dump(kubectl_list(*objects)))
    code, out, err = simulate(capsys, policies, pods, "--port", "80", "-o", "json")
    assert code == 0, err
    assert err.strip() == (
        "gim-netpol: note: 1 pod has no IP yet (Pending), so neither sends nor receives pod-IP traffic;"
        " left out of the probes: z/c"
    )
    verdicts = {(p["from"], p["to"]): p["allowed"] for p in probes_of(out)}
    assert not any("z/c" in pair for pair in verdicts)
    assert len(verdicts) == 3 * 2
    # the ipBlock still decides for the pods that have an IP
    assert verdicts[("z/d", "x/a")] is True and verdicts[("y/b", "x/a")] is False
    # without a policy that needs it, a pending pod is left out too: it takes no traffic at all
    code, out, err = simulate(capsys, pods, "--port", "80", "-o", "json", "--to", "z")
    assert code == 0 and "z/c" in err
    assert {p["to"] for p in probes_of(out)} == {"z/d"}


def test_jsonl_is_the_json_probes_one_a_line(snapshot: str, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = simulate(capsys, snapshot, "-o", "json")
    assert code == 0
    code, lines, _ = simulate(capsys, snapshot, "-o", "jsonl")
    assert code == 0
    assert lines.endswith("\n") and not lines.startswith('{"probes"')
    assert [json.loads(line) for line in lines.splitlines()] == probes_of(out)
    assert len(lines.splitlines()) == 9 * 8 * 2
    code, empty, _ = simulate(capsys, snapshot, "-o", "jsonl", "--port", "nope-name")
    assert code == 2 and empty == ""


def counted(results: Any, seen: list[int]) -> Any:
    for result in results:
        seen[0] += 1
        yield result


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_json_is_written_while_the_probes_are_decided(output: str) -> None:
    """All pairs of 1,000 pods are 3 million probes: the output must not wait for, or hold, all of them."""
    from conformance.commands.simulate import WRITE_BATCH, write_json, write_jsonl
    from conformance.netpol.simulator import Simulator
    from conformance.netpol.snapshot import cluster_from_objects

    objects = [pod(f"ns-{i % 5}", f"p{i}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(120)]
    cluster = cluster_from_objects([("big.json", o) for o in [*objects, ALLOW_X_FROM_Y]])
    total = 120 * 119 * 2
    decided = [0]
    written_after: list[int] = []
    lines_per_write: list[int] = []

    def write(text: str) -> None:
        written_after.append(decided[0])
        lines_per_write.append(text.count("\n"))

    results = counted(
        Simulator(cluster).matrix(cluster.pods, cluster.pods, [(80, "TCP"), (81, "UDP")]), decided
    )
    (write_json if output == "json" else write_jsonl)(results, write)
    assert decided[0] == total
    assert written_after[0] <= WRITE_BATCH + 1 < total
    assert max(lines_per_write) <= WRITE_BATCH + 1
    assert sum(lines_per_write) == total + (2 if output == "json" else 0)


def test_an_invalid_policy_names_its_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = {**ALLOW_X_FROM_Y, "spec": {"podSelector": {}, "ingress": [{"from": [{}]}]}}
    pods = write(
        tmp_path,
        "pods.yaml",
        yaml.safe_dump(kubectl_list(pod("x", "a", "10.1.0.1"), pod("x", "b", "10.1.0.2"))),
    )
    policies = write(tmp_path, "policies.yaml", yaml.safe_dump(bad))
    message = one_line_error(*simulate(capsys, pods, policies)[::2])
    assert message.startswith(f"{policies}: NetworkPolicy x/allow-80-from-y: "), message


def run_module(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_python_m_conformance_simulate(snapshot: str, tmp_path: Path) -> None:
    done = run_module("simulate", snapshot, "--port", "80", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert len(probes_of(done.stdout)) == 9 * 8

    done = run_module("simulate", snapshot, "--port", "nope")
    assert done.returncode == 2
    one_line_error(done.returncode, done.stderr)

    done = run_module("simulate", write(tmp_path, "broken.json", '{"kind": "List", "items": [}'))
    assert done.returncode == 2
    assert "broken.json: invalid JSON at line 1" in one_line_error(done.returncode, done.stderr)

    done = run_module("simulate")  # usage error: argparse's message and status
    assert done.returncode == 2
    assert "usage:" in done.stderr and "Traceback" not in done.stderr


def test_output_cut_short_by_the_reader_is_not_a_crash(tmp_path: Path) -> None:
    # `gim-netpol simulate ... | head -1`, with more output than a pipe holds
    many = [pod("x", f"p{i}", f"10.244.0.{i + 1}") for i in range(60)]
    path = write(tmp_path, "many.yaml", yaml.safe_dump(kubectl_list(*many)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "simulate", path, "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == '{"probes": [\n'
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) in (0, 1)
    assert "Traceback" not in stderr and "Exception" not in stderr


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_quietly(
    snapshot: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["simulate", snapshot, "-o", "json"]) == 1
    assert "error" not in capsys.readouterr().err


def test_json_output_of_many_probes_is_fast() -> None:
    import time

    from conformance.commands.simulate import format_json
    from conformance.netpol.simulator import Simulator
    from conformance.netpol.snapshot import cluster_from_objects

    objects = [pod(f"ns-{i % 5}", f"p{i}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(350)]
    cluster = cluster_from_objects([("big.json", o) for o in [*objects, ALLOW_X_FROM_Y]])
    results = list(Simulator(cluster).matrix(cluster.pods, cluster.pods, [(80, "TCP")]))
    assert len(results) == 350 * 349
    start = time.process_time()
    text = format_json(results)
    elapsed = time.process_time() - start
    assert len(probes_of(text)) == len(results)
    # 450,000 probes (the benchmark) must be written well under a second: this is about a quarter of it
    assert elapsed < 0.5, f"{elapsed:.2f}s of CPU for {len(results)} probes"
