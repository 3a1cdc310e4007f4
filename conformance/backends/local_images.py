"""Images built on this machine by ``images/build.py`` (for machines that reach no image registry), as its
record ``<cache>/build/images.json`` names them: a kind node image whose containerd already holds the
control plane, agnhost and the enforcers' images, and the kind and kubectl it built.

The kind backend uses them when the pinned upstream node image is not in the local Docker engine and the
recorded one is (``--images auto``, the default), or always (``--images local``); ``--images upstream``
never does."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import UserError

CHOICES = ("auto", "local", "upstream")


def cache_root() -> Path:
    """The suite's cache (``GIM_NETPOL_CACHE_DIR``, else ``$XDG_CACHE_HOME/gim-netpol``, else
    ``~/.cache/gim-netpol``), as conformance.backends.tools and images/build.py use it."""
    explicit = os.environ.get("GIM_NETPOL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gim-netpol"


@dataclass(frozen=True)
class LocalImages:
    node_image: str
    kubernetes_version: str
    probe_image: str
    kind: str
    kubectl: str

    @classmethod
    def read(cls, path: Path) -> LocalImages | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                str(data["node_image"]),
                str(data["kubernetes_version"]),
                str(data["probe_image"]),
                str(data.get("kind") or ""),
                str(data.get("kubectl") or ""),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def apply(options: dict, upstream_node_image: str, default_probe_image: str) -> str | None:
    """Sets ``options["node_image"]`` (and, when left at its default, ``options["probe_image"]``) to the
    images the kind backend boots, and puts the build's kind and kubectl first on PATH: they are the ones
    built with that node image (a kubectl of another minor on PATH would be refused, and fetching another
    one needs the network the local build is there to do without). Returns a note naming the local images,
    None for the upstream ones."""
    options["node_image"] = upstream_node_image
    built = choose(options.get("images") or "auto", upstream_node_image)
    if built is None:
        return None
    options["node_image"] = built.node_image
    if options.get("probe_image") in (None, "", default_probe_image):
        options["probe_image"] = built.probe_image
    extra = [str(Path(p).parent) for p in (built.kind, built.kubectl) if p and Path(p).is_file()]
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d not in extra]
    os.environ["PATH"] = os.pathsep.join([*dict.fromkeys(extra), *path])
    return (
        f"images built on this machine by images/build.py: node {built.node_image} "
        f"(Kubernetes {built.kubernetes_version}), probes {options['probe_image']}"
    )


def record_path() -> Path:
    return cache_root() / "build" / "images.json"


def choose(choice: str, upstream_node_image: str) -> LocalImages | None:
    """The locally built images to use, or None for the upstream ones. Raises UserError for ``local``
    without a build."""
    if choice not in CHOICES:
        raise UserError(f"expected one of {', '.join(CHOICES)}, got {choice!r}", source="--images")
    if choice == "upstream":
        return None
    from conformance.backends.kind import docker_has_image as docker_has

    built = LocalImages.read(record_path())
    usable = built is not None and docker_has(built.node_image)
    if choice == "local":
        if not usable:
            raise UserError(
                f"no locally built node image ({record_path()} missing, or its image is not in docker): "
                "build them with `python3 images/build.py`",
                source="--images",
            )
        return built
    tag = upstream_node_image.split("@", 1)[0]
    if docker_has(tag):
        return None
    return built if usable else None
