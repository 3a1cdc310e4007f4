"""The probe fleet: the namespaces, stand-ins, clients and Services that the conformance tests probe.

Created once per session (per xdist worker; one for all tests when ``--values`` fixes the names) and
reused, as the upstream netpol e2e tests do: a test changes only what it is about (the policies in the
GIM namespace, or namespaces it creates itself). Between tests the fleet returns to a known state: no
policy of the run is left in its namespaces. Before every check the fleet confirms that its probe pods
are still the ones it created, and Ready, so a pod deleted or recreated in the middle of a session is
reported instead of being probed blindly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from conformance.backends.base import Backend, PodsCannotRun
from conformance.netpol.model import K8sObject
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite.observations import SharedObservations
from conformance.suite.topology import Topology


class FleetBroken(Exception):
    """The fleet's probe pods are not what it created: its verdicts can no longer be trusted."""


@dataclass
class Fleet:
    backend: Backend
    topology: Topology
    ready_timeout_s: float = 180.0
    borrowed: tuple[str, ...] = ()  # client namespaces that existed before the fleet
    created: list[K8sObject] = field(default_factory=list)  # what the fleet made, namespaces aside
    pods: dict[str, str | None] = field(default_factory=dict)  # probe pod -> its IP when set up
    shared: SharedObservations = field(default_factory=SharedObservations)  # converged observations

    # -- lifecycle -----------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the namespaces, stand-ins and clients and wait until they are Ready. A client namespace
        that already exists (the values name real namespaces) gets only its client pod; a GIM namespace
        that already exists is refused: the suite deploys policies there and deletes it at the end."""
        present = self._wait_out_terminating()
        gim = self.topology.gim_namespace
        if gim in present:
            raise FleetBroken(
                f"namespace {gim} already exists in this cluster: the suite deploys its own stand-ins and "
                "policies there and deletes it afterwards. Pass --gim-namespace with an unused name, run "
                "`gim-netpol cleanup` if a crashed run left it, or check a live GIM with `gim-netpol verify`"
            )
        self.borrowed = tuple(ns for ns in self.topology.client_namespaces if ns in present)
        objects = [o for o in self.topology.objects() if not self._is_borrowed_namespace(o)]
        self.created = [o for o in objects if o["kind"] != "Namespace"]
        self.backend.apply(objects)
        self._wait_ready()
        self.pods = self._probe_pods(self.topology.namespaces)

    def _wait_ready(self) -> None:
        try:
            self.backend.wait_ready(self.topology.namespaces, self.ready_timeout_s)
        except PodsCannotRun as exc:
            raise FleetBroken(f"probe pods cannot run: {exc}") from None

    def _wait_out_terminating(self) -> dict[str, str]:
        """The cluster's namespaces, once those of the topology still being deleted are gone.

        Namespace deletion is asynchronous (Terminating for 10-20 s on a real cluster) and a
        terminating namespace takes no new objects (403 "is being terminated"): a previous fleet's GIM
        namespace, or a client namespace this run created, is waited out, never refused nor borrowed.
        """
        phases = self.backend.namespace_phases()
        terminating = [ns for ns in self.topology.namespaces if phases.get(ns) == "Terminating"]
        if terminating:
            self.backend.wait_gone(self.topology.namespace_objects(terminating), self.ready_timeout_s)
            phases = self.backend.namespace_phases()
        return phases

    def _is_borrowed_namespace(self, obj: K8sObject) -> bool:
        return obj["kind"] == "Namespace" and obj["metadata"]["name"] in self.borrowed

    def _probe_pods(self, namespaces: tuple[str, ...]) -> dict[str, str | None]:
        keys = set(self.topology.client_keys) | {self.topology.server_key(w) for w in self.topology.servers}
        return {p.key: p.ip for p in self.backend.state(namespaces).pods if p.key in keys}

    def teardown(self) -> None:
        """Delete what the fleet created: its namespaces, and its pods in namespaces it borrowed."""
        in_borrowed = [o for o in self.created if o["metadata"].get("namespace") in self.borrowed]
        if in_borrowed:
            self.backend.delete(in_borrowed)
        # Not waited for: the namespaces terminate in the background, and a later fleet with the same
        # names waits them out in its setup.
        self.backend.delete(
            [o for o in self.topology.namespace_objects() if not self._is_borrowed_namespace(o)]
        )

    # -- between and during tests --------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the known state: no NetworkPolicy of this run in the fleet's namespaces (policies
        that the run did not create, e.g. in a borrowed namespace, are never touched)."""
        state = self.backend.state(self.topology.namespaces)
        run_id = self.topology.run_id
        left = [p for p in state.policies if _labels(p).get(RUN_LABEL) == run_id]
        if left:
            self.backend.delete(left)

    def confirm_ready(self) -> float:
        """Seconds spent confirming that every probe pod is still the one the fleet created (same IP)
        and Ready. Raises FleetBroken when one was deleted or recreated."""
        start = self.backend.clock.now()
        now = self._probe_pods(self.topology.namespaces)
        gone = sorted(k for k in self.pods if k not in now)
        moved = sorted(k for k, ip in self.pods.items() if k in now and now[k] != ip)
        if gone or moved:
            problems = [f"{k} is gone" for k in gone] + [
                f"{k} was recreated (IP {self.pods[k]} -> {now[k]})" for k in moved
            ]
            raise FleetBroken(
                "probe pods changed since the fleet was set up: "
                + "; ".join(problems)
                + " (deleted by hand, evicted, or the node went away?): the run's verdicts cannot be trusted"
            )
        self._wait_ready()
        return self.backend.clock.now() - start

    def view(self, allowed: int | None = None) -> Topology:
        """The fleet as one test sees it (see ``view``)."""
        return view(self.topology, allowed)


def view(topology: Topology, allowed: int | None) -> Topology:
    """``topology`` as one test sees it: the first ``allowed`` client namespaces listed in the values,
    the others not (``None``: as it was built)."""
    if allowed is None:
        return topology
    listed = topology.allowed_namespaces
    if allowed > len(listed):
        raise ValueError(f"the fleet has {len(listed)} namespaces to allow, not {allowed}")
    return replace(
        topology,
        allowed_namespaces=listed[:allowed],
        other_namespaces=(*listed[allowed:], *topology.other_namespaces),
    )


def _labels(obj: K8sObject) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}
