"""The pytest plugin: options, the backend fixture, the scenario factory, and the run's summary.

Loaded by the root conftest.py. Bad options or input files stop the run before anything touches a
cluster (one line, exit status 2); a live backend that cannot start stops it the same way, so a CI
gate never passes by skipping.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conformance.backends.base import Backend, BackendUnavailable, PodsCannotRun
from conformance.errors import UserError
from conformance.gim.values import NetpolValues, load_values
from conformance.gim.workloads import GIM_CLIENT, REFERENCE_WORKLOADS, Workload
from conformance.suite import options as opts
from conformance.suite.cni_features import CniFeatureReport, cni_summary_lines, policies_under_test
from conformance.suite.cni_share import SharedCanaries
from conformance.suite.controls import ControlFailed, ControlResults, run_controls
from conformance.suite.fleet import Fleet, FleetBroken, view
from conformance.suite.scenario import Scenario, Timing
from conformance.suite.topology import Topology

MODES = ("disabled", "dryrun", "enforce")
SUITE_DIR = Path(__file__).resolve().parents[1]  # conformance/, where the test_*.py files live
_SETTINGS_KEY = pytest.StashKey["Settings"]()
_CLOCK_KEY = pytest.StashKey[Any]()
INFRASTRUCTURE = "gim-netpol-infrastructure-error"
CLOCK = "gim-netpol-clock"


@dataclass(frozen=True)
class Settings:
    options: dict[str, Any]
    run_id: str
    timing: Timing
    values: NetpolValues | None  # --values / --set: the values under test; None = reference values per test
    policies: tuple[dict, ...] | None  # --manifests / --chart: the chart's own NetworkPolicies
    workloads: tuple[Workload, ...]
    notes: tuple[str, ...] = ()
    gim_client: Workload = GIM_CLIENT

    @property
    def backend(self) -> str:
        return self.options["backend"]

    @property
    def fixed_names(self) -> bool:
        return self.values is not None

    @property
    def fleet_per_test(self) -> bool:
        """Every test gets a fleet of its own (``--fleet test``; ``--keep-namespaces`` implies it)."""
        return self.options["fleet"] == "test" or self.options["keep_namespaces"]


def values_mode(values: NetpolValues) -> str:
    return values.mode if values.enabled else "disabled"


def _run_id(config: pytest.Config) -> str:
    """One id for the whole run: xdist's testrunuid, which the controller hands to every worker (set
    here, before xdist starts them, so that the controller knows it too)."""
    shared = os.environ.get("PYTEST_XDIST_TESTRUNUID") or getattr(config.option, "testrunuid", None)
    if not shared:
        shared = uuid.uuid4().hex
        if hasattr(config.option, "testrunuid"):
            config.option.testrunuid = shared
    return shared[:8]


def check_node_memory(text: str) -> None:
    """``--node-memory``: a size as ``docker update --memory`` takes it (a number and b, k, m or g)."""
    if not re.fullmatch(r"[1-9][0-9]*[bkmg]?", str(text).lower()):
        raise UserError(f"expected a size such as 3g or 2048m, got {text!r}", source="--node-memory")


def load_settings(config: pytest.Config) -> Settings:
    """Resolve options and load every input file. Raises UserError."""
    o = opts.resolve(config)
    if o.get("verify_probe_namespaces"):
        from conformance.suite.probe_namespaces import ProbeNamespaces

        ProbeNamespaces.parse(o["verify_probe_namespaces"], source="--verify-probe-namespaces")
    if o.get("model_faults"):
        from conformance.backends.model_faults import parse_faults
        from conformance.backends.model_nodes import check_cordoned, kind_nodes

        check_cordoned(parse_faults(o["model_faults"]).cordoned, kind_nodes(o["model_nodes"]))
    if o.get("model_pace", "auto") != "auto":
        from conformance.backends.factory import parse_pace

        parse_pace(o["model_pace"])
    timing = Timing(
        probe_timeout_s=o["probe_timeout"],
        converge_timeout_s=o["converge_timeout"],
        ready_timeout_s=o["ready_timeout"],
        retry_interval_s=1.0,
    )
    if (o["manifests"] or o["chart"]) and not o["values"]:
        raise UserError(
            "needs --values too: the values the chart was rendered with are the contract it is tested on",
            source="--manifests" if o["manifests"] else "--chart",
        )
    if o["manifests"] and o["chart"]:
        raise UserError("give --manifests or --chart, not both", source="--chart")
    values = load_values(o["values"], o["set"]) if (o["values"] or o["set"]) else None
    policies: tuple[dict, ...] | None = None
    workloads = REFERENCE_WORKLOADS
    notes: list[str] = []
    if o["backend"] == "kind" and _runs_suite(config):  # not for a run of the suite's own tests alone
        from conformance.backends import local_images
        from conformance.backends.kind import NODE_IMAGE, check_calico_source
        from conformance.probes.agnhost import AGNHOST_IMAGE

        check_node_memory(o["node_memory"])
        if o["cni"] == "calico":  # a missing manifest stops the run before docker is asked anything
            check_calico_source(o["calico_version"], o["calico_manifests"], no_download=o["no_download"])
        note = local_images.apply(o, NODE_IMAGE, AGNHOST_IMAGE)
        notes += [note] if note else []
        if note and o["cni"] == "calico" and not o["calico_manifests"]:
            # images/build.py builds no Calico (neither its images nor its sources are to be had where it
            # runs): a cluster would be created only to fail fetching Calico's manifests.
            raise UserError(
                "Calico is not among the images built on this machine by images/build.py: run with "
                "--cni kube-router (or kube-network-policies), or --images upstream where a registry serves "
                "Calico",
                source="--cni",
            )
    gim_client = GIM_CLIENT
    manifests = o["manifests"]
    if o["chart"]:
        from conformance.gim.chart import helm_template

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # every xdist worker renders for itself
        out = Path(config.rootpath / ".pytest_cache" / "gim-netpol" / worker)
        out.mkdir(parents=True, exist_ok=True)
        manifests = str(helm_template(o["chart"], o["values"], o["set"], o["gim_namespace"], out_dir=out))
    if manifests:
        from conformance.gim.chart import load_manifests

        chart = load_manifests(manifests, o["gim_namespace"])
        policies = chart.policies
        workloads = tuple(chart.workloads) or REFERENCE_WORKLOADS
        notes += list(chart.notes)
        gim_client = chart.client_workload or GIM_CLIENT
    return Settings(o, _run_id(config), timing, values, policies, workloads, tuple(notes), gim_client)


# -- hooks ---------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    opts.add_options(parser)


def _informational(config: pytest.Config) -> bool:
    """--help, --version, --markers, --fixtures: nothing runs, nothing needs checking."""
    o = config.option
    return any(getattr(o, name, False) for name in ("help", "version", "markers", "showfixtures"))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Check options, input files and (for a live backend) its prerequisites before anything else.

    A problem ends the run here with one line on stderr and exit status 2: no test is collected, so
    none can be reported as passed, and nothing has touched a cluster.
    """
    if _informational(config):
        return None
    try:
        settings = load_settings(config)
        if settings.backend != "model" and _runs_suite(config) and not hasattr(config, "workerinput"):
            from conformance.backends.factory import preflight

            try:
                preflight(settings.options)
            except BackendUnavailable as e:
                raise UserError(f"cannot start backend {settings.backend}: {e}") from None
    except UserError as e:
        sys.stderr.write(f"gim-netpol: error: {' '.join(str(e).split())}\n")
        return 2
    config.stash[_SETTINGS_KEY] = settings
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None:
        return []
    o = settings.options
    if settings.values is None:
        under_test = "the reference values of each test"
    else:
        v = settings.values
        listed = ", ".join(v.allowed_namespaces) or "none"
        under_test = (
            f"{' + '.join(o['values'] + [f'--set {x}' for x in o['set']])}: mode {values_mode(v)}, "
            f"allowedNamespaces [{listed}], {len(v.extra_policies)} extraPolicies"
        )
    deployed = o["manifests"] or o["chart"] or "the reference rendering"
    lines = [
        f"gim-netpol: backend {settings.backend}"
        + (f" ({o['cni']} on nodes of {o['node_image']})" if settings.backend == "kind" else "")
        + f", run {settings.run_id}",
        f"gim-netpol: values under test: {under_test}; policies deployed from {deployed}",
    ]
    return lines + [f"gim-netpol: note: {n}" for n in settings.notes]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "switch: switches between modes as helm upgrade does")
    for marker in MODES:
        config.addinivalue_line("markers", f"{marker}: a test of networkPolicy mode {marker}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist (controller): with --values the namespace names are fixed, so every conformance test must
    run on the same worker (two workers would create and delete the same namespaces). A scope scheduler
    that puts them all in one scope does it; xdist's own xdist_group does not group under pytest >= 9.2
    (pytest-dev/pytest-xdist#1386)."""
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None or not settings.fixed_names:
        return None
    from xdist.scheduler import LoadScopeScheduling

    suite = SUITE_DIR.name + "/"

    class FixedNamesScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "gim-netpol-fixed-names" if nodeid.startswith(suite) else nodeid

    return FixedNamesScheduling(config, log)


def _runs_suite(config: pytest.Config) -> bool:
    """Whether this invocation collects the conformance tests (not only the suite's own tests)."""
    args = [a.split("::")[0] for a in config.args if not a.startswith("-")]
    if not args:
        return True
    for a in args:
        p = (config.invocation_params.dir / a).resolve()
        if p == SUITE_DIR or SUITE_DIR in p.parents or p in SUITE_DIR.parents:
            return True
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """An unreachable API server ends the test as an infrastructure ERROR with one line (never a FAILED
    verdict, never a traceback), marked in the report so that a gate tells a broken cluster from a
    broken chart. Each report also carries the backend's clock (the model's simulated live time)."""
    from conformance.api_errors import ApiUnreachable

    outcome = yield
    report = outcome.get_result()
    clock = item.config.stash.get(_CLOCK_KEY, None)
    if clock is not None and call.when == "teardown":
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        report.user_properties.append((CLOCK, json.dumps({"worker": worker, "now": clock.now()})))
    if call.when == "teardown" and _started_pending:
        report.user_properties.append(("gim-netpol-started", _started_pending.pop()))
    if call.when == "teardown" and _cni_pending:
        # The CNI features report, once per session (per xdist worker: user_properties are what travel
        # to the controller), on the first test report after the canaries ran, passed or not.
        report.user_properties.append(("gim-netpol-cni-features", _cni_pending.pop()))
    if call.excinfo is not None and isinstance(call.excinfo.value, ApiUnreachable):
        message = f"INFRASTRUCTURE ERROR: {call.excinfo.value}"
        report.outcome = "failed"
        report.longrepr = message
        item.user_properties.append((INFRASTRUCTURE, message))
        report.user_properties.append((INFRASTRUCTURE, message))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple | None:
    if report.failed and any(name == INFRASTRUCTURE for name, _ in report.user_properties):
        return "error", "E", "ERROR"
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's last lines: why it stopped, when the backend could not start (on stderr, once
    for all xdist workers); what was left and the command, when the run could not clean up."""
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None or hasattr(config, "workerinput"):
        return
    from conformance.backends.factory import leftovers_line, leftovers_path
    from conformance.suite import session_stop

    stopped = session_stop.take(_leftovers_dir(config), settings.run_id)
    if stopped:
        sys.stdout.flush()
        sys.stderr.write(stopped + "\n")
        sys.stderr.flush()
    line = leftovers_line(_leftovers_dir(config), settings.run_id)
    if line:
        leftovers_path(_leftovers_dir(config), settings.run_id).unlink(missing_ok=True)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def netpol_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[_SETTINGS_KEY]


@pytest.fixture(scope="session")
def netpol_backend(
    netpol_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
    request: pytest.FixtureRequest,
) -> Iterator[Backend]:
    """One backend per session (per xdist worker); a kind cluster is shared by all workers.

    A backend that cannot start (prerequisite, input, a failed command, an enforcer whose pods never get
    Ready) stops the session at once with one line and exit status 2 (session_stop): no test runs. What
    it created is deleted first (a kind cluster the run created, unless --keep-cluster)."""
    from conformance.backends.factory import open_backend, run_state_dir
    from conformance.backends.kind import CommandFailed
    from conformance.suite import session_stop

    name = netpol_settings.backend
    shared_dir = run_state_dir(tmp_path_factory.getbasetemp(), netpol_settings.run_id)
    opened = contextlib.ExitStack()
    try:
        backend = opened.enter_context(
            open_backend(
                netpol_settings.options, netpol_settings.run_id, shared_dir, _leftovers_dir(pytestconfig)
            )
        )
    except (BackendUnavailable, CommandFailed, PodsCannotRun, UserError) as e:
        line = f"gim-netpol: error: cannot start backend {name}: {' '.join(str(e).split())}"
        session_stop.stop(request.session, _leftovers_dir(pytestconfig), netpol_settings.run_id, line)
    pytestconfig.stash[_CLOCK_KEY] = backend.clock
    if getattr(backend, "started", ""):
        _started_pending.append(backend.started)
    try:
        yield backend
    finally:
        try:
            opened.close()
        except (BackendUnavailable, CommandFailed) as e:  # e.g. `kind delete cluster` failed
            message = f"gim-netpol: cannot stop backend {name}: {' '.join(str(e).split())}"
            raise pytest.fail.Exception(message, pytrace=False) from None  # one line, no traceback


def _leftovers_dir(config: pytest.Config) -> Path:
    """Where workers record what they could not delete, for the controller's last line."""
    return config.rootpath / ".pytest_cache" / "gim-netpol"


@pytest.fixture(scope="session")
def netpol_controls(
    netpol_settings: Settings,
    netpol_backend: Backend,
    netpol_fleet: Callable[[], Fleet],
    tmp_path_factory: pytest.TempPathFactory,
) -> ControlResults:
    """Baseline and CNI canary, once per session (per xdist worker), before any scenario: on the
    session's probe fleet, or in scratch namespaces when every test has a fleet of its own. The CNI
    feature canaries run once per session: under xdist, on the first worker to get here (cni_share)."""
    from conformance.backends.factory import run_state_dir

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    s = netpol_settings
    choice = s.options["cni_features"]
    shared = None
    if worker and choice != "none":
        shared = SharedCanaries(run_state_dir(tmp_path_factory.getbasetemp(), s.run_id))
    runs_canaries = shared is None or shared.claim()
    published: CniFeatureReport | None = None
    try:
        results = run_controls(
            netpol_backend,
            s.run_id,
            s.timing,
            image=s.options["probe_image"],
            suffix=worker,
            cni_features_choice=choice if runs_canaries else "none",
            policies=policies_under_test(s.values, s.policies, s.options["gim_namespace"]),
            fleet=None if s.fleet_per_test else netpol_fleet,
        )
        published = results.cni
    except ControlFailed as e:
        published = e.cni
        _record_cni(e.cni)  # the features table is reported whatever the outcome
        raise pytest.fail.Exception(str(e), pytrace=False) from None  # one line, no chained traceback
    except (FleetBroken, PodsCannotRun) as e:
        raise pytest.fail.Exception(str(e), pytrace=False) from None
    finally:
        if shared is not None and runs_canaries:
            shared.publish(published)
    if runs_canaries:
        _record_cni(results.cni)
        return results
    # Another worker runs the canaries: its verdicts explain this worker's mismatches, and a needed
    # feature it found not enforced fails this worker's tests too, as in a run without xdist.
    report, failures = shared.read(wait_s=s.timing.ready_timeout_s + s.timing.converge_timeout_s)
    if failures:
        raise pytest.fail.Exception("\n".join(failures), pytrace=False)
    return replace(results, cni=report)


_cni_pending: list[str] = []  # the session's CNI features report, until a test report carries it
_started_pending: list[str] = []  # what the backend's start did and took (kind: create, enforcer Ready)


def _record_cni(report: CniFeatureReport | None) -> None:
    if report is not None:
        _cni_pending.append(json.dumps(report.to_json()))


_counter = iter(range(1, 1_000_000))


def _name(role: str, run_id: str, serial: int) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return re.sub(r"[^a-z0-9-]", "", f"{role}-{run_id[:6]}{worker}-{serial}")[:63].rstrip("-")


ScenarioFactory = Callable[..., Scenario]
FLEET_ROLES = ("ingress-nginx", "monitoring")  # client namespaces the reference values allow


def _fleet_topology(s: Settings, serial: int) -> Topology:
    """The fleet's namespaces: with --values, the names they fix; else names unique to the run."""
    other = (_name("not-allowed", s.run_id, serial),)
    if s.values is not None:
        gim, allowed = s.options["gim_namespace"], s.values.allowed_namespaces
    else:
        gim, allowed = _name("gim", s.run_id, serial), tuple(_name(r, s.run_id, serial) for r in FLEET_ROLES)
    return Topology(
        s.run_id, gim, allowed, other, s.workloads, s.options["probe_image"], gim_client=s.gim_client
    )


def _new_fleet(s: Settings, backend: Backend) -> Fleet:
    fleet = Fleet(backend, _fleet_topology(s, next(_counter)), s.timing.ready_timeout_s)
    try:
        fleet.setup()
    except BaseException as e:
        # What was created is deleted now, or named with its cleanup command at the end of the session.
        with contextlib.suppress(Exception):
            fleet.teardown()
        if isinstance(e, FleetBroken):
            raise pytest.fail.Exception(str(e), pytrace=False) from None
        raise
    return fleet


@pytest.fixture(scope="session")
def netpol_fleet(netpol_settings: Settings, netpol_backend: Backend) -> Iterator[Callable[[], Fleet]]:
    """The session's probe fleet, created on first use (a run whose tests all skip creates nothing) and
    deleted at the end of the session unless --keep-namespaces."""
    made: list[Fleet] = []

    def get() -> Fleet:
        if not made:
            made.append(_new_fleet(netpol_settings, netpol_backend))
        return made[0]

    yield get
    if made and not netpol_settings.options["keep_namespaces"]:
        made[0].teardown()


@pytest.fixture
def scenario(
    netpol_settings: Settings,
    netpol_backend: Backend,
    netpol_controls: ControlResults,
    netpol_fleet: Callable[[], Fleet],
    request: pytest.FixtureRequest,
) -> Iterator[ScenarioFactory]:
    """Build a scenario for a mode on the probe fleet, with the mode's policies deployed.

    ``own_values=True`` marks a test that needs values of its own shape: it is skipped when the run was
    given --values. ``switches_modes=True`` marks a test that redeploys the same values in other modes:
    with --values it uses them (mode set by the test), with --manifests it is skipped (one rendering
    holds one mode). Otherwise, with --values, the user's values and namespace names are used, and a
    test for another mode is skipped with the reason. With ``--fleet test`` every scenario gets a fleet
    of its own, created and deleted with it.
    """
    made: list[Scenario] = []
    s = netpol_settings

    def make(
        mode: str,
        *,
        allowed: int = len(FLEET_ROLES),
        extra_policies: tuple[dict, ...] = (),
        own_values: bool = False,
        switches_modes: bool = False,
        deploy: bool = True,
    ) -> Scenario:
        assert mode in MODES, mode
        if s.values is not None:
            if own_values:
                pytest.skip("this test sets values of its own shape; it runs without --values/--set")
            values = s.values
            if switches_modes:
                if s.policies is not None:
                    pytest.skip(
                        "switches modes: needs the chart rendered in each mode; runs without --manifests"
                    )
                values = replace(
                    values, enabled=mode != "disabled", mode="enforce" if mode == "enforce" else "dryrun"
                )
            elif values_mode(s.values) != mode:
                pytest.skip(
                    f"not applicable: the values under test set mode {values_mode(s.values)}, not {mode}"
                )
        allowing = None if s.values is not None else allowed
        if s.fleet_per_test:
            topology = view(_fleet_topology(s, next(_counter)), allowing)
        else:
            fleet = netpol_fleet()
            topology = fleet.view(allowing)
        if s.values is None:
            values = NetpolValues(
                enabled=mode != "disabled",
                mode="enforce" if mode == "enforce" else "dryrun",
                allowed_namespaces=topology.allowed_namespaces,
                extra_policies=tuple(extra_policies),
            )
        if s.fleet_per_test:
            sc = Scenario.standalone(netpol_backend, topology, values, s.timing, s.policies)
        else:
            sc = Scenario(netpol_backend, fleet, topology, values, s.timing, s.policies)
        sc.cni = netpol_controls.cni
        made.append(sc)
        sc.setup()
        if deploy:
            sc.deploy()
        return sc

    yield make
    from conformance.api_errors import ApiUnreachable

    for sc in made:
        _record(request, sc)
        if not s.options["keep_namespaces"]:
            try:
                sc.teardown()
            except ApiUnreachable as e:
                # Said once, at the test that met the outage; what is left is deleted (or named, with
                # the command that removes it) at the end of the session.
                request.node.user_properties.append(
                    ("gim-netpol-note", f"teardown postponed to the end of the session: {e}")
                )


def _record(request: pytest.FixtureRequest, sc: Scenario) -> None:
    """Attach each check's summary to the test report (xdist carries user_properties to the controller)."""
    for report in sc.reports:
        request.node.user_properties.append(("gim-netpol-check", json.dumps(report.summary())))
    for note in sc.notes:
        request.node.user_properties.append(("gim-netpol-note", note))


def _collected(terminalreporter: Any) -> list[tuple[str, str, str]]:
    rows = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            for name, value in getattr(rep, "user_properties", []):
                if name.startswith("gim-netpol-") and getattr(rep, "when", "call") == "teardown":
                    rows.append((rep.nodeid, name, value))
    return rows


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    settings = config.stash.get(_SETTINGS_KEY, None)
    rows = _collected(terminalreporter)
    if not rows or settings is None:
        return
    terminalreporter.section(f"gim-netpol conformance ({settings.backend} backend)")
    for value in dict.fromkeys(v for _, n, v in rows if n == "gim-netpol-started"):
        terminalreporter.write_line(value)
    for value in dict.fromkeys(v for _, n, v in rows if n == "gim-netpol-cni-features"):
        terminalreporter.write_line("\n".join(cni_summary_lines(json.loads(value))))
    checks = [json.loads(v) for _, n, v in rows if n == "gim-netpol-check"]
    for note in dict.fromkeys(d["nodes_note"] for d in checks if d.get("nodes_note")):
        terminalreporter.write_line(f"nodes: {note}")  # once, not per check (a single node is no failure)
    clocks: dict[str, float] = {}
    for nodeid, name, value in rows:
        if name in ("gim-netpol-cni-features", "gim-netpol-started"):
            continue
        if name == CLOCK:
            d = json.loads(value)
            clocks[d["worker"]] = max(clocks.get(d["worker"], 0.0), d["now"])
        elif name == INFRASTRUCTURE:
            terminalreporter.write_line(f"{value}  [{nodeid}]")
        elif name == "gim-netpol-check":
            d = json.loads(value)
            held = (
                f"observation shared with '{d['shared_from']}' (same objects, same fleet)"
                if d.get("shared_from")
                else f"held after {d['converge_s']:.2f}s"
            )
            terminalreporter.write_line(
                f"{d['label']}: {d['probes']} probes, {d['mismatches']} mismatches,"
                f" {d['contract_breaks']} contract breaks, {held}"
                f" (pod IP: {d['same_node']} same-node, {d['cross_node']} cross-node"
                f"{', NO CROSS-NODE FLOW' if d.get('cross_node_problem') else ''})  [{nodeid}]"
            )
        else:
            terminalreporter.write_line(f"note: {value}  [{nodeid}]")
    if clocks and settings.backend == "model":
        # Workers run side by side: the run takes as long as its longest worker.
        per_worker = ", ".join(f"{w} {t:.0f} s" for w, t in sorted(clocks.items()))
        terminalreporter.write_line(
            f"simulated live time: {max(clocks.values()):.0f} s"
            + (f" (workers: {per_worker})" if len(clocks) > 1 else "")
        )
    report_dir = settings.options["report_dir"]
    if report_dir:
        path = Path(report_dir)
        path.mkdir(parents=True, exist_ok=True)
        out = path / "gim-netpol-checks.json"
        out.write_text(
            json.dumps(
                [{"test": n, "kind": k, **_entry(k, v)} for n, k, v in rows if k != CLOCK],
                indent=2,
            )
        )
        terminalreporter.write_line(f"report: {out}")


def _entry(kind: str, value: str) -> dict:
    if kind in ("gim-netpol-check", "gim-netpol-cni-features"):
        return json.loads(value)
    if kind == INFRASTRUCTURE:
        return {"infrastructure_error": True, "error": value}
    return {"note": value}
