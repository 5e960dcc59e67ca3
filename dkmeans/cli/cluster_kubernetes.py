"""A Kubernetes cluster for a job: the ``DaskCluster`` resource a ``type:
kubernetes`` cluster file makes, built with dask-kubernetes' own
``make_cluster_spec`` and handed to its ``KubeCluster``.

Two rules hold for what runs unattended: the image is pinned (a tag other
than ``latest``, or a digest), so tonight's job runs the code last night's
did; and storage credentials come from a Kubernetes Secret
(``storage_secret:``: its keys become the scheduler's and workers'
environment, e.g. ``AWS_ACCESS_KEY_ID``), never inline in the file, where
they would sit in the resource for anyone who can read it.
"""

from __future__ import annotations

from typing import Any

from dkmeans.data.storage import SECRET_OPTIONS
from dkmeans.errors import InvalidParameterError


def check_kubernetes(config: dict, where: str) -> None:
    """The image pinned, and no secret inline in ``storage:``."""
    image = config["image"]
    name, _, tag = image.rpartition(":")
    pinned = "@sha256:" in image or (name and "/" not in tag and tag not in ("", "latest"))
    if not pinned:
        raise InvalidParameterError(
            f"The image {image!r} in {where} is not pinned: name a version tag (e.g. "
            "registry/dkmeans:2026.12.0) or a digest (@sha256:...), so every run of a "
            "scheduled job runs the same code.")
    inline = SECRET_OPTIONS & set(config.get("storage") or {})
    if inline:
        raise InvalidParameterError(
            f"{where} names storage credentials inline ({', '.join(sorted(inline))}): put "
            "them in a Kubernetes Secret and name it with storage_secret:, so they are "
            "not in the cluster resource.")


def cluster_spec(config: dict) -> dict:
    """The ``DaskCluster`` resource of a checked ``kubernetes`` configuration."""
    from dask_kubernetes.operator import make_cluster_spec

    spec = make_cluster_spec(name=config["name"], image=config["image"],
                             n_workers=config["n_workers"], resources=config["resources"],
                             env=config.get("env") or None)
    secret = config.get("storage_secret")
    for part in (spec["spec"]["scheduler"], spec["spec"]["worker"]):
        for container in part["spec"]["containers"]:
            if container.get("env") is None:  # null fails the CRD's schema
                container.pop("env", None)
            if secret:
                container.setdefault("envFrom", []).append({"secretRef": {"name": secret}})
    return spec


def kube_cluster(config: dict) -> Any:
    """A ``KubeCluster`` made from :func:`cluster_spec`."""
    from dask_kubernetes.operator import KubeCluster

    return KubeCluster(custom_cluster_spec=cluster_spec(config))
