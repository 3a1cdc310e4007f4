"""``gim-netpol simulate SNAPSHOT... [--port SPEC]... [--from NS[/POD]] [--to NS[/POD]] [-o FORMAT]``.

Every ordered pair of distinct pods of the snapshot that passes the filters is probed, on every port,
by the simulator: no cluster is touched. A pod without an IP (Pending) is left out, with a note. The
probes are written as they are decided (all pairs of 1,000 pods are 3 million probes).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from conformance.commands import note
from conformance.errors import UserError
from conformance.netpol.model import PROTOCOLS, Pod
from conformance.netpol.truthtable import render_table

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# IANA_SVC_NAME, as container port names are validated: at most 15 characters, at least one letter.
PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DIGITS = re.compile(r"(\d+)")
WRITE_BATCH = 4096  # probes per write: few system calls, little memory
ALLOWED, BLOCKED = ord("."), ord("X")
NAMED_IN_NOTE = 5


def natural_key(pod_key: str) -> tuple[tuple[str | int, ...], ...]:
    """Sort key of ``ns/pod`` keys: by namespace, then pod, numbers in names compared as numbers
    (``pod-2`` before ``pod-10``)."""
    return tuple(
        tuple(int(part) if i % 2 else part for i, part in enumerate(DIGITS.split(name)))
        for name in pod_key.split("/", 1)
    )


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A ``--port``: a number or a container port name, and a protocol (None: as each pod declares it)."""

    port: int | str
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class PodFilter:
    """A ``--from`` / ``--to``: a namespace, or one pod of it."""

    namespace: str
    pod: str | None = None

    def matches(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and (self.pod is None or pod.name == self.pod)

    def __str__(self) -> str:
        return self.namespace if self.pod is None else f"{self.namespace}/{self.pod}"


def parse_port_spec(text: str) -> PortSpec:
    """``PORT``, ``PORT/PROTO`` or a port name (``NAME/PROTO`` too); PORT alone means TCP."""
    port, sep, protocol = text.partition("/")
    proto: str | None = None
    if sep:
        proto = protocol.upper()
        if proto not in PROTOCOLS:
            raise UserError(
                f"{text!r}: protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}", source="--port"
            )
    if port.isdigit():
        number = int(port)
        if not 1 <= number <= 65535:
            raise UserError(f"{text!r}: a port number is from 1 to 65535", source="--port")
        return PortSpec(number, proto or "TCP")
    if len(port) > 15 or not PORT_NAME.fullmatch(port) or "--" in port or not re.search("[a-z]", port):
        raise UserError(
            f"{text!r}: expected PORT, PORT/PROTO or a container port name (lowercase letters, digits and"
            " '-', at most 15 characters)",
            source="--port",
        )
    return PortSpec(port, proto)


def parse_pod_filter(text: str, option: str) -> PodFilter:
    """``NS`` or ``NS/POD``."""
    namespace, sep, pod = text.partition("/")
    if (
        not DNS_LABEL.fullmatch(namespace)
        or len(namespace) > 63
        or (sep and (not DNS_SUBDOMAIN.fullmatch(pod) or len(pod) > 253))
    ):
        raise UserError(f"expected NS or NS/POD (Kubernetes names), got {text!r}", source=option)
    return PodFilter(namespace, pod if sep else None)


def select_pods(pods: Sequence[Pod], filters: Sequence[PodFilter], option: str) -> list[Pod]:
    """The pods matching any of ``filters`` (all pods without filters); a filter matching none is an error."""
    if not filters:
        return list(pods)
    for f in filters:
        if not any(f.matches(p) for p in pods):
            what = "namespace" if f.pod is None else "pod"
            raise UserError(f"no {what} {f} in the snapshot", source=option)
    return [p for p in pods if any(f.matches(p) for f in filters)]


def resolve_ports(specs: Sequence[PortSpec], destinations: Sequence[Pod]) -> list[tuple[int | str, str]]:
    """The (port, protocol) pairs to probe. A name without protocol takes each protocol under which a
    destination declares it; a name that no destination declares is an error."""
    resolved: dict[tuple[int | str, str], None] = {}
    for spec in specs:
        if isinstance(spec.port, int):
            resolved[(spec.port, spec.protocol or "TCP")] = None
            continue
        protocols = sorted(
            {
                cp.protocol
                for pod in destinations
                for cp in pod.ports
                if cp.name == spec.port and spec.protocol in (None, cp.protocol)
            }
        )
        if not protocols:
            what = spec.port if spec.protocol is None else f"{spec.port}/{spec.protocol}"
            raise UserError(f"unknown port name {what!r}: no destination pod declares it", source="--port")
        for protocol in protocols:
            resolved[(spec.port, protocol)] = None
    return list(resolved)


Result = tuple[Pod, Pod, int, str, Any]  # (source, destination, port, protocol, Verdict)


def run_probes(
    simulator: Any,
    sources: Sequence[Pod],
    destinations: Sequence[Pod],
    ports: Sequence[tuple[int | str, str]],
) -> Iterator[Result]:
    """Every probe, as the simulator's matrix yields them. Without ports, each destination is probed on
    the container ports it declares (destinations declaring the same ports are probed together)."""
    if ports:
        yield from simulator.matrix(sources, destinations, ports)
        return
    groups: dict[tuple[tuple[int, str], ...], list[Pod]] = defaultdict(list)
    for pod in destinations:
        declared = tuple(dict.fromkeys((cp.port, cp.protocol) for cp in pod.ports))
        if declared:
            groups[declared].append(pod)
    for declared, group in groups.items():
        yield from simulator.matrix(sources, group, declared)


def probe_lines(results: Iterable[Result]) -> Iterator[str]:
    """One JSON object per probe, as text: ``{"from", "to", "port", "protocol", "allowed", "reason"}``.

    Written by hand rather than with json.dumps of one dict per probe: pod keys and reasons repeat, so
    each is encoded once."""
    encode = json.dumps
    heads: dict[int, str] = {}  # '{"from": "ns/pod", "to": ' per source
    tails: dict[tuple[bool, str], str] = {}  # '"allowed": true, "reason": "..."}' per verdict
    column: tuple[Any, int, str] | None = None
    middle = ""  # '"ns/pod", "port": 80, "protocol": "TCP", ' of the current column
    for src, dst, port, protocol, verdict in results:
        head = heads.get(id(src))
        if head is None:
            head = heads[id(src)] = f'{{"from": {encode(src.key)}, "to": '
        if column is None or column[0] is not dst or column[1] != port or column[2] != protocol:
            column = (dst, port, protocol)
            middle = f'{encode(dst.key)}, "port": {int(port)}, "protocol": {encode(protocol)}, '
        tail = tails.get((verdict.allowed, verdict.reason))
        if tail is None:
            allowed = "true" if verdict.allowed else "false"
            tail = tails[(verdict.allowed, verdict.reason)] = (
                f'"allowed": {allowed}, "reason": {encode(verdict.reason)}}}'
            )
        yield head + middle + tail


def _batches(lines: Iterator[str]) -> Iterator[list[str]]:
    while batch := list(islice(lines, WRITE_BATCH)):
        yield batch


def write_json(results: Iterable[Result], write: Callable[[str], Any]) -> None:
    """``{"probes": [...]}``, one probe a line, written as the probes come: memory does not grow with them."""
    lines = probe_lines(results)
    first = next(lines, None)
    if first is None:
        write('{"probes": []}\n')
        return
    write('{"probes": [\n' + first)
    for batch in _batches(lines):
        write(",\n" + ",\n".join(batch))
    write("\n]}\n")


def write_jsonl(results: Iterable[Result], write: Callable[[str], Any]) -> None:
    """One probe a line (JSON Lines), nothing else."""
    for batch in _batches(probe_lines(results)):
        write("\n".join(batch) + "\n")


def format_json(results: Iterable[Result]) -> str:
    out = io.StringIO()
    write_json(results, out.write)
    return out.getvalue()


def write_tables(results: Iterable[Result], sources: Sequence[Pod], write: Callable[[str], Any]) -> None:
    """One truth table per port and protocol: ``sources`` as rows (in their order), probed destinations
    as columns (in natural order). A table needs all its cells before its first line, so the cells are
    kept, one byte each, and each table is written as soon as it is rendered."""
    rows = list(dict.fromkeys(p.key for p in sources))
    row_of = {key: i for i, key in enumerate(rows)}
    not_probed = b"-" * len(rows)
    tables: dict[tuple[int, str], dict[str, bytearray]] = defaultdict(dict)
    column: tuple[Any, int, str] | None = None
    cells = bytearray()
    for src, dst, port, protocol, verdict in results:
        if column is None or column[0] is not dst or column[1] != port or column[2] != protocol:
            column = (dst, port, protocol)
            table = tables[(port, protocol)]
            cells = table.get(dst.key) or table.setdefault(dst.key, bytearray(not_probed))
        cells[row_of[src.key]] = ALLOWED if verdict.allowed else BLOCKED
    if not tables:
        write("no probe: no destination pod declares a port\n")
        return
    for n, (port, protocol) in enumerate(sorted(tables)):
        table = tables.pop((port, protocol))

        def cell(src: str, dst: str, table: dict[str, bytearray] = table) -> str:
            return chr(table[dst][row_of[src]])

        cols = sorted(table, key=natural_key)
        text = render_table(rows, cols, cell, title=f"port {port}/{protocol}")
        write(("\n\n" if n else "") + text)
    write("\n")


def format_tables(results: Iterable[Result], sources: Sequence[Pod]) -> str:
    out = io.StringIO()
    write_tables(results, sources, out.write)
    return out.getvalue()


def without_ip(pods: Sequence[Pod]) -> tuple[list[Pod], list[Pod]]:
    """The pods that can take part in pod-IP traffic, and those that cannot: no IP yet (Pending)."""
    probed = [p for p in pods if p.ip]
    return probed, [p for p in pods if not p.ip]


def ip_less_note(pods: Sequence[Pod]) -> str:
    names = ", ".join(p.key for p in pods[:NAMED_IN_NOTE])
    more = f" and {len(pods) - NAMED_IN_NOTE} more" if len(pods) > NAMED_IN_NOTE else ""
    which = "pod has" if len(pods) == 1 else "pods have"
    return (
        f"{len(pods)} {which} no IP yet (Pending), so neither sends nor receives pod-IP traffic;"
        f" left out of the probes: {names}{more}"
    )


OBJECT_NAMED = re.compile(r"(NetworkPolicy )?\b([a-z0-9][-a-z0-9.]*/[a-z0-9][-a-z0-9.]*)")


def locate(error: UserError, origins: dict[str, str], snapshots: Sequence[str]) -> UserError:
    """The simulator's error, naming the snapshot file of the first pod or policy its message names.

    The simulator does not know files: its messages name objects (``x/a has no IP, and NetworkPolicy
    x/p needs it``) and its keys are paths inside a policy (``spec.ingress[0].from[0]``)."""
    if error.source is not None:
        return error
    source = None
    for policy, key in OBJECT_NAMED.findall(error.message):
        kinds = ("NetworkPolicy",) if policy else ("Pod", "NetworkPolicy")
        source = next((origins[f"{kind}/{key}"] for kind in kinds if f"{kind}/{key}" in origins), None)
        if source is not None:
            break
    message = f"{error.message} ({error.key})" if error.key else error.message
    return UserError(message, source=source or ", ".join(snapshots))


def run(args: argparse.Namespace) -> int:
    from conformance.netpol.simulator import Simulator
    from conformance.netpol.snapshot import load_snapshot, source_name

    specs = [parse_port_spec(p) for p in args.ports]
    from_filters = [parse_pod_filter(f, "--from") for f in args.sources]
    to_filters = [parse_pod_filter(f, "--to") for f in args.destinations]
    notes: list[str] = []  # printed only if the command succeeds: an error stays the one line on stderr
    cluster, origins = load_snapshot(args.snapshots, notes=notes.append)
    pods = sorted(cluster.pods, key=lambda p: natural_key(p.key))
    sources = select_pods(pods, from_filters, "--from")
    destinations = select_pods(pods, to_filters, "--to")
    ports = resolve_ports(specs, destinations)
    (sources, no_ip), (destinations, no_ip_dst) = without_ip(sources), without_ip(destinations)
    if no_ip or no_ip_dst:
        notes.append(ip_less_note(list({id(p): p for p in [*no_ip, *no_ip_dst]}.values())))
    snapshots = [source_name(s) for s in args.snapshots]
    write = sys.stdout.write
    try:
        simulator = Simulator(cluster)
        results = run_probes(simulator, sources, destinations, ports)
        if args.output == "json":
            write_json(results, write)
        elif args.output == "jsonl":
            write_jsonl(results, write)
        else:
            write_tables(results, sources, write)
    except UserError as e:
        raise locate(e, origins, snapshots) from None
    sys.stdout.flush()
    for message in notes:
        note(message)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="decide, from a snapshot, which pods may connect to which",
        description=(
            "Probe every ordered pair of distinct pods of the snapshots with the NetworkPolicy simulator."
            " A snapshot is YAML or JSON, as `kubectl get ns,pods,netpol -A -o yaml` prints it"
            " ('-' reads stdin)."
        ),
    )
    parser.add_argument("snapshots", nargs="+", metavar="SNAPSHOT", help="YAML or JSON file, '-' for stdin")
    parser.add_argument(
        "--port",
        dest="ports",
        action="append",
        default=[],
        metavar="SPEC",
        help="PORT, PORT/PROTO or a container port name (repeatable; default: each destination's"
        " declared container ports)",
    )
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="NS[/POD]",
        help="only these source pods (repeatable)",
    )
    parser.add_argument(
        "--to",
        dest="destinations",
        action="append",
        default=[],
        metavar="NS[/POD]",
        help="only these destination pods (repeatable)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "jsonl"),
        default="table",
        help="one truth table per port and protocol (default), one JSON object, or JSON Lines (one probe"
        " a line); json and jsonl are written as the probes are decided, in constant memory",
    )
    parser.set_defaults(func=run)
