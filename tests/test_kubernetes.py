"""Kubernetes resources for scheduled jobs. No Kubernetes runs here, so the
resources dkmeans makes (with dask-kubernetes' own ``make_cluster_spec``) and
the shipped manifests are checked against the CRD schemas dask-kubernetes
ships, and against the kubernetes client's models."""

from pathlib import Path

import pytest
import yaml

from dkmeans.cli.cluster import load_config
from dkmeans.errors import InvalidParameterError

operator = pytest.importorskip("dask_kubernetes.operator")
jsonschema = pytest.importorskip("jsonschema")

CONFIGS = Path(__file__).resolve().parents[1] / "cluster_configs"
CRDS = Path(operator.__file__).parent / "deployment" / "helm" / "dask-kubernetes-operator" / \
    "crds"


def _schema(kind):
    crd = yaml.safe_load((CRDS / f"{kind}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _containers(pod_spec):
    return pod_spec["spec"]["containers"]


def test_the_daskcluster_dkmeans_makes_fits_the_crd_and_keeps_secrets_out():
    from dkmeans.cli.cluster_kubernetes import cluster_spec

    config = load_config(CONFIGS / "kubernetes.yaml")
    spec = cluster_spec(config)
    jsonschema.validate(spec, _schema("daskcluster"))
    assert spec["kind"] == "DaskCluster"
    for part in (spec["spec"]["scheduler"], spec["spec"]["worker"]):
        for container in _containers(part):
            assert container["image"] == config["image"] and \
                not container["image"].endswith(":latest")
            assert container["resources"] == config["resources"]
            assert container["envFrom"] == [{"secretRef": {"name": "dkmeans-storage"}}]
            assert not any("value" in e and e["name"].startswith("AWS_")
                           for e in container.get("env", []))


@pytest.mark.parametrize("change,match", [
    ({"image": "ghcr.io/dask/dask:latest"}, "not pinned"),
    ({"image": "ghcr.io/dask/dask"}, "not pinned"),
    ({"storage": {"key": "AKIA", "secret": "s"}}, "Kubernetes Secret"),
])
def test_unpinned_images_and_inline_secrets_are_refused(tmp_path, change, match):
    config = yaml.safe_load((CONFIGS / "kubernetes.yaml").read_text())
    config.update(change)
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(InvalidParameterError, match=match):
        load_config(path)


def test_the_shipped_daskjob_fits_the_crd_and_resumes():
    job = yaml.safe_load((CONFIGS / "kubernetes" / "daskjob.yaml").read_text())
    jsonschema.validate(job, _schema("daskjob"))
    runner = _containers(job["spec"]["job"])[0]
    assert runner["args"][:2] == ["dkmeans", "fit"]
    assert "--resume" in runner["args"] and "--checkpoint-every" in runner["args"]
    pods = [job["spec"]["job"], job["spec"]["cluster"]["spec"]["worker"],
            job["spec"]["cluster"]["spec"]["scheduler"]]
    for pod in pods:
        for container in _containers(pod):
            assert ":" in container["image"] and not container["image"].endswith(":latest")
            assert container["resources"]["limits"]
            assert all("valueFrom" in e or not e["name"].startswith("AWS_")
                       for e in container.get("env", []))
    # the job pod finds the DaskJob's scheduler as dask does, by DASK_SCHEDULER_ADDRESS
    import dask

    env = {e["name"]: e["value"] for e in runner["env"]}
    with dask.config.set({"scheduler-address": "tcp://dkmeans-nightly-scheduler:8786"}), \
            pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        config = load_config(None)
    assert config["type"] == "scheduler"
    assert config["address"] == "tcp://dkmeans-nightly-scheduler:8786"


def test_the_nightly_cronjob_and_its_rights_are_valid_kubernetes():
    from kubernetes.client import ApiClient

    docs = list(yaml.safe_load_all((CONFIGS / "kubernetes" / "nightly.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "Role", "RoleBinding", "CronJob"}
    api = ApiClient()
    for kind, doc in kinds.items():
        model = api._ApiClient__deserialize(doc, f"V1{kind}")  # required fields checked
        assert model.metadata.name == "dkmeans-nightly"
    cron = kinds["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dkmeans-nightly"
    assert not pod["containers"][0]["image"].endswith(":latest")
    assert "kubectl create -f /manifests/daskjob.yaml" in pod["containers"][0]["args"][0]
    rule = kinds["Role"]["rules"][0]
    assert rule["resources"] == ["daskjobs"] and {"create", "delete"} <= set(rule["verbs"])
