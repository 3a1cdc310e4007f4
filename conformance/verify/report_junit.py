"""The verify result as JUnit XML: one testcase per flow (source, destination, port, mode).

A flow fails when it breaks the documented contract; a namespace that needs GIM gets one testcase
that fails when enforce would block it; a live probe fails when it did not observe the expected verdict.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conformance.verify.analysis import Analysis
from conformance.verify.cni_features import junit_cases


def _case(
    suite: ET.Element, classname: str, name: str, props: dict[str, object], failure: str | None
) -> bool:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
    properties = ET.SubElement(case, "properties")
    for key, value in props.items():
        ET.SubElement(properties, "property", name=key, value=str(value))
    if failure:
        ET.SubElement(case, "failure", message=failure.splitlines()[0][:500]).text = failure
    return failure is not None


def to_junit(analysis: Analysis) -> str:
    mode = analysis.inference.mode
    ns = analysis.gim_namespace
    root = ET.Element("testsuites", name="gim-netpol verify")
    suites: list[tuple[ET.Element, int, int]] = []

    flows = ET.SubElement(root, "testsuite", name=f"verify {ns}: expected flows [{mode}]")
    failed = 0
    for f in analysis.flows:
        props = {
            "source": f.source,
            "destination": f.destination,
            "port": f.port,
            "protocol": f.protocol,
            "mode": mode,
            "expected": "allowed" if f.allowed else "blocked",
            "promise": f.promise,
            "reason": f.reason,
        }
        name = f"{f.source} -> {f.destination}:{f.port}/{f.protocol} [{mode}]"
        failed += _case(flows, f"verify.{mode}.{f.source_namespace}", name, props, f.violation)
    suites.append((flows, len(analysis.flows), failed))

    needs = ET.SubElement(root, "testsuite", name=f"verify {ns}: namespaces that need GIM [enforce]")
    failed = 0
    for need in analysis.shadow.needs:
        blocked = analysis.would_block.get(need.namespace, [])
        failure = None
        if blocked:
            failure = f"{need.namespace} needs GIM but enforce blocks it:\n" + "\n".join(
                f"{b.source} -> {b.target}: {b.reason}" for b in blocked
            )
        props = {"namespace": need.namespace, "evidence": "; ".join(need.evidence), "mode": "enforce"}
        if need.observed:
            props["observed"] = "; ".join(need.observed)
        failed += _case(
            needs, "verify.needsAccess", f"{need.namespace} reaches GIM [enforce]", props, failure
        )
    suites.append((needs, len(analysis.shadow.needs), failed))

    cni_cases = junit_cases(analysis.cni_features)
    if cni_cases:
        cni = ET.SubElement(root, "testsuite", name=f"verify {ns}: CNI features")
        failed = 0
        for name, props, failure, skipped in cni_cases:
            failed += _case(cni, "verify.cniFeatures", name, props, failure)
            if skipped:
                ET.SubElement(cni[-1], "skipped", message=str(props.get("reason", "")))
        suites.append((cni, len(cni_cases), failed))

    if analysis.live:
        probes = ET.SubElement(root, "testsuite", name=f"verify {ns}: probes [{mode}]")
        failed = 0
        for p in analysis.probes:
            expected = "allowed" if p.expected_allowed else "blocked"
            failure = None
            if p.outcome == "unknown":  # refused by a pod whose listening is not known: not checked
                failure = None
            elif not p.agrees:
                failure = (
                    f"expected {expected}, observed {p.outcome} ({p.reason})\nrepro: {p.repro}\n{p.detail}"
                )
            props = {
                "source": p.client,
                "destination": p.target,
                "port": p.port,
                "protocol": p.protocol,
                "via": p.via,
                "mode": mode,
                "expected": expected,
                "observed": p.outcome,
                "latencySeconds": round(p.latency_s, 3),
                "repro": p.repro,
            }
            name = f"{p.client} -> {p.target}:{p.port}/{p.protocol} via {p.via} [{mode}]"
            failed += _case(probes, f"verify.{mode}.probe", name, props, failure)
            if p.outcome == "unknown":
                ET.SubElement(probes[-1], "skipped", message=f"not checked: {p.detail.splitlines()[0][:300]}")
        suites.append((probes, len(analysis.probes), failed))

    total = sum(t for _, t, _ in suites)
    failures = sum(f for _, _, f in suites)
    for suite, tests, fails in suites:
        suite.set("tests", str(tests))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
    root.set("tests", str(total))
    root.set("failures", str(failures))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
