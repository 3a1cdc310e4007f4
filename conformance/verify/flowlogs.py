"""Flow logs users can export today, read into one record type: who connected to what, when, how often.

Formats (one record a line; detected from the first record, or named with ``--flows-format``):

hubble  ``hubble observe -o jsonpb``: one ``observer.GetFlowsResponse`` a line, ``{"flow": {...},
        "node_name": ..., "time": ...}`` (cilium api/v1/observer/observer.proto; the Flow message of
        api/v1/flow/flow.proto, JSON with the proto field names: ``IP.source``/``IP.destination``,
        ``l4.TCP|UDP|SCTP.destination_port``, ``source``/``destination`` endpoints with ``namespace``
        and ``pod_name``, ``verdict``, ``is_reply``, ``time``). Responses that are not flows
        (``node_status``, ``lost_events``) and replies (``is_reply: true``: the answer of a connection,
        not a new one) are skipped, not counted as malformed.
calico  Calico Enterprise / Cloud flow logs as JSON lines (docs.tigera.io "Flow log data types":
        ``start_time``/``end_time`` UNIX seconds, ``source_namespace``, ``source_name``,
        ``source_name_aggr``, ``source_ip``, ``dest_*`` likewise, ``dest_port``, ``proto``, ``action``
        allow|deny, ``reporter`` src|dst, ``num_flows``, ``policies``). A name of ``-`` means the
        endpoint was aggregated: ``*_name_aggr`` holds a prefix pattern such as ``billing-*``.
csv     ``src_namespace,src_pod,dst_namespace,dst_pod,dst_port,protocol`` with an optional header
        line (an optional ``time`` column, ISO 8601); a pod field that is an IP address is resolved
        through the snapshot, like the IPs of the other formats.
"""

from __future__ import annotations

import csv
import functools
import io
import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from conformance.errors import UserError

HUBBLE, CALICO, CSV = "hubble", "calico", "csv"
FORMATS = (HUBBLE, CALICO, CSV)
CSV_COLUMNS = ("src_namespace", "src_pod", "dst_namespace", "dst_pod", "dst_port", "protocol")
PROTOCOL_NUMBERS = {"6": "TCP", "17": "UDP", "132": "SCTP"}


class Skip(Exception):
    """A well-formed record that is not a new connection (a reply, a node status, ICMP)."""


@dataclass(frozen=True)
class Endpoint:
    namespace: str | None  # None: not known from the record (resolve the IP)
    pod: str | None  # a pod name, a Calico aggregate pattern (``billing-*``), or None
    ip: str | None

    def shown(self) -> str:
        if self.namespace and self.pod:
            return f"{self.namespace}/{self.pod}"
        return self.ip or (self.namespace and f"{self.namespace}/?") or "?"


@dataclass(frozen=True)
class ObservedFlow:
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str
    start: datetime | None
    end: datetime | None
    count: int = 1
    verdict: str = ""  # forwarded | dropped | allow | deny (as the log says it)
    detail: str = ""  # e.g. the Calico policies that decided
    reporter: str = ""  # Calico: src or dst (each end reports the same flow)


@dataclass
class FlowLog:
    path: str
    format: str
    flows: list[ObservedFlow] = field(default_factory=list)
    malformed: int = 0
    skipped: int = 0
    first_error: str = ""

    def summary(self) -> str:
        text = f"{self.path} ({self.format}): {len(self.flows)} flow record(s)"
        if self.skipped:
            text += f", {self.skipped} skipped (replies, non-flow events, no port)"
        if self.malformed:
            text += f", {self.malformed} malformed line(s) ignored (first: {self.first_error})"
        return text


def _time(value: object) -> datetime | None:
    """An RFC 3339 time or UNIX seconds, as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value)):
        return datetime.fromtimestamp(float(value), tz=UTC)
    parsed = datetime.fromisoformat(str(value))  # 3.11+: RFC 3339, Z, nanoseconds cut to microseconds
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _port(value: object) -> int:
    port = int(str(value))
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return port


def _protocol(value: object) -> str:
    text = str(value or "TCP").strip().upper()
    return PROTOCOL_NUMBERS.get(text, text)


def _ip(value: object) -> str | None:
    return _canonical_ip(str(value)) if value else None


@functools.lru_cache(maxsize=65536)  # a log names few IPs many times; validating each costs most
def _canonical_ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


# -- Hubble -------------------------------------------------------------------------------------------


def _hubble_endpoint(endpoint: dict, ip: object) -> Endpoint:
    return Endpoint(endpoint.get("namespace") or None, endpoint.get("pod_name") or None, _ip(ip))


def parse_hubble(line: str) -> ObservedFlow:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    flow = record.get("flow") if "flow" in record else (record if "IP" in record or "l4" in record else None)
    if flow is None:
        if record.keys() & {"node_status", "lost_events", "agent_event", "debug_event"}:
            raise Skip
        raise ValueError("neither a flow nor a GetFlowsResponse")
    if flow.get("is_reply"):
        raise Skip
    ips = flow.get("IP") or {}
    l4 = flow.get("l4") or {}
    source = _hubble_endpoint(flow.get("source") or {}, ips.get("source"))
    destination = _hubble_endpoint(flow.get("destination") or {}, ips.get("destination"))
    if not (destination.ip or destination.pod) or not (source.ip or source.pod or source.namespace):
        raise ValueError("flow without source or destination")
    proto = next((p for p in ("TCP", "UDP", "SCTP") if p in l4), None)
    if proto is None:
        raise Skip  # ICMP and friends: no port to compare with a NetworkPolicy
    when = _time(flow.get("time") or record.get("time"))
    return ObservedFlow(
        source,
        destination,
        _port(l4[proto]["destination_port"]),
        proto,
        when,
        when,
        verdict=str(flow.get("verdict") or "").lower(),
    )


# -- Calico ------------------------------------------------------------------------------------------


def _calico_endpoint(record: dict, prefix: str) -> Endpoint:
    namespace = record.get(f"{prefix}_namespace")
    name = record.get(f"{prefix}_name")
    if not name or name == "-":
        aggregate = record.get(f"{prefix}_name_aggr")
        name = aggregate if aggregate not in (None, "-", "pvt", "pub") else None
    return Endpoint(
        namespace if namespace not in (None, "", "-") else None, name or None, _ip(record.get(f"{prefix}_ip"))
    )


def _policies(record: dict) -> str:
    policies = record.get("policies")
    if isinstance(policies, dict):
        listed = policies.get("all_policies") or policies.get("enforced_policies") or []
    else:
        listed = policies or []
    return ", ".join(str(p) for p in listed[:3]) if isinstance(listed, list) else str(listed)


def parse_calico(line: str) -> ObservedFlow:
    record = json.loads(line)
    if not isinstance(record, dict) or "dest_port" not in record:
        raise ValueError("no dest_port: not a Calico flow log record")
    source, destination = _calico_endpoint(record, "source"), _calico_endpoint(record, "dest")
    if not (destination.ip or destination.pod):
        raise ValueError("no destination name or IP")
    if record.get("dest_port") in (None, "", "-"):
        raise Skip
    policies = _policies(record)
    return ObservedFlow(
        source,
        destination,
        _port(record["dest_port"]),
        _protocol(record.get("proto")),
        _time(record.get("start_time")),
        _time(record.get("end_time") or record.get("start_time")),
        count=int(record.get("num_flows") or 1),
        verdict=str(record.get("action") or "").lower(),
        detail=f"policies {policies}" if policies else "",
        reporter=str(record.get("reporter") or ""),
    )


# -- CSV ---------------------------------------------------------------------------------------------


def _csv_endpoint(namespace: str, pod: str) -> Endpoint:
    pod = pod.strip()
    try:
        return Endpoint(namespace.strip() or None, None, _ip(pod))
    except ValueError:
        return Endpoint(namespace.strip() or None, pod or None, None)


def csv_parser(header: list[str] | None) -> Callable[[str], ObservedFlow]:
    columns = [c.strip().lower() for c in header] if header else [*CSV_COLUMNS, "time"]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"header lacks {', '.join(missing)}")

    def parse(line: str) -> ObservedFlow:
        (row,) = list(csv.reader(io.StringIO(line)))
        if len(row) < len(CSV_COLUMNS) or (header and len(row) != len(columns)):
            raise ValueError(f"{len(row)} columns, expected {len(columns) if header else len(CSV_COLUMNS)}")
        values = dict(zip(columns, row, strict=False))
        when = _time(values.get("time"))
        source = _csv_endpoint(values["src_namespace"], values["src_pod"])
        destination = _csv_endpoint(values["dst_namespace"], values["dst_pod"])
        if not (destination.pod or destination.ip):
            raise ValueError("empty dst_pod")
        return ObservedFlow(
            source, destination, _port(values["dst_port"]), _protocol(values["protocol"]), when, when
        )

    return parse


# -- reading -----------------------------------------------------------------------------------------


def detect(first: str) -> str | None:
    """The format of a log from its first record, or None."""
    text = first.strip()
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if isinstance(record, dict):
            if "flow" in record or "IP" in record or record.keys() & {"node_status", "lost_events"}:
                return HUBBLE
            if "dest_port" in record or "source_namespace" in record:
                return CALICO
        return None
    row = next(csv.reader(io.StringIO(text)), [])
    if [c.strip().lower() for c in row[: len(CSV_COLUMNS)]] == list(CSV_COLUMNS) or len(row) >= len(
        CSV_COLUMNS
    ):
        return CSV
    return None


def parse_flow_log(text: str | Iterable[str], path: str, format_name: str | None = None) -> FlowLog:
    """The flows of one log (its text, or its lines as a file yields them: a day of flows is read one
    line at a time). Malformed lines are counted; the log is refused (UserError naming the file) only
    when it has lines and none parses."""
    numbered = (
        (n, line)
        for n, line in enumerate(text.splitlines() if isinstance(text, str) else text, start=1)
        if line.strip()
    )
    first = next(numbered, None)
    if first is None:
        return FlowLog(path, format_name or "empty")
    lines = itertools.chain([first], numbered)
    fmt = format_name or detect(first[1])
    if fmt is None:
        raise UserError(
            f"cannot tell the flow log format from line {first[0]}: name it with --flows-format"
            f" {'|'.join(FORMATS)}",
            source=path,
        )
    log = FlowLog(path, fmt)
    if fmt == CSV:
        row = next(csv.reader(io.StringIO(first[1])), [])
        has_header = [c.strip().lower() for c in row[: len(CSV_COLUMNS)]] == list(CSV_COLUMNS)
        try:
            parser = csv_parser(row if has_header else None)
        except ValueError as exc:
            raise UserError(f"line {first[0]}: {exc}", source=path) from None
        if has_header:
            next(lines)
    else:
        parser = parse_hubble if fmt == HUBBLE else parse_calico
    for number, line in lines:
        try:
            log.flows.append(parser(line))
        except Skip:
            log.skipped += 1
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.malformed += 1
            if not log.first_error:
                if isinstance(exc, json.JSONDecodeError):
                    what = f"invalid JSON at character {exc.pos + 1}: {exc.msg}"
                elif isinstance(exc, KeyError):
                    what = f"missing {exc.args[0] if exc.args else exc}"
                else:
                    what = str(exc)
                log.first_error = f"line {number}: {' '.join(what.split())[:120]}"
    if log.malformed and not log.flows:
        raise UserError(
            f"no line is a {fmt} flow ({log.malformed} malformed; first at {log.first_error})", source=path
        )
    return log


def read_flow_logs(paths: Iterable[str], format_name: str | None = None) -> list[FlowLog]:
    """Every ``--flows`` file, parsed; a file that cannot be read is a UserError naming it."""
    logs = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                logs.append(parse_flow_log(f, path, format_name))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UserError(f"cannot read the flow log: {reason}", source=path) from None
    return logs
