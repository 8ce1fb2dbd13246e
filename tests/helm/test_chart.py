"""The Helm chart (deploy/helm/portal): it lints strictly, renders with the default and the
production values, and every object it renders loads into the official Kubernetes client's
model of its kind, where a field the model does not know fails (a typo'd or misplaced field
would otherwise be dropped by the API server without a word). Then what the chart promises:
probes, a grace period that fits the drain, PDBs, autoscalers, the migration hook, secrets
only by reference, and network policies with exactly ARCHITECTURE.md's flows.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes.client.models as k8s
import pytest
import yaml
from kubernetes.client import ApiClient

from portal_launcher.components import helm as helm_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "portal"
PRODUCTION = CHART / "values-production.yaml"
BACKENDS = ("ingest", "normalize", "moderation", "publishing", "engagement", "search")
PROCESSES = (*BACKENDS, "web", "edge-purger")
VALUES = {"default": [], "production": ["-f", str(PRODUCTION)]}

# The custom resources of KEDA (no model in the client): the fields this chart may use.
KEDA_FIELDS: dict[str, set[str]] = {
    "ScaledObject": {
        "scaleTargetRef",
        "minReplicaCount",
        "maxReplicaCount",
        "pollingInterval",
        "cooldownPeriod",
        "triggers",
    },
    "TriggerAuthentication": {"env", "secretTargetRef"},
}


@cache
def helm_binary() -> Path:
    """Helm, built from the Go module proxy the first time a chart test needs it on this machine."""
    if not helm_tool.helm_binary().is_file():
        print(
            f"building Helm {helm_tool.HELM_VERSION} (once per machine; only the chart's tests use it)"
        )
    return helm_tool.build_helm()


def _helm(*args: str) -> str:
    helm = helm_binary()
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@cache
def _rendered(values: str, *extra: str) -> tuple[dict[str, Any], ...]:
    out = _helm("template", "portal", str(CHART), "--namespace", "portal", *VALUES[values], *extra)
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


# -- loading into the client's models, strictly ------------------------------------------------


class UnknownField(AssertionError):
    pass


def _model_name(obj: dict[str, Any]) -> str:
    version = obj["apiVersion"].split("/")[-1]
    return f"{version[0].upper()}{version[1:]}{obj['kind']}"


def _check(value: Any, type_name: str, path: str) -> None:
    """``value`` fits the OpenAPI type ``type_name`` of the client (recursively)."""
    if value is None:
        return
    lowered = type_name.lower()
    if lowered.startswith("list["):  # list[V1Container] or List[V1Container]
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for i, item in enumerate(value):
            _check(item, type_name[5:-1], f"{path}[{i}]")
    elif lowered.startswith(("dict(", "dict[")):  # dict(str, str) or Dict[str, str]
        assert isinstance(value, dict), f"{path}: expected a map, got {value!r}"
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, item in value.items():
            _check(item, inner, f"{path}.{key}")
    elif type_name in ("str", "int", "bool", "float"):
        expected = {"str": str, "int": int, "bool": bool, "float": (int, float)}[type_name]
        assert isinstance(value, expected) and not (
            type_name == "int" and isinstance(value, bool)
        ), f"{path}: expected {type_name}, got {value!r}"
    elif type_name in ("object", "datetime", "date"):
        return
    else:
        model = getattr(k8s, type_name)
        assert isinstance(value, dict), f"{path}: expected {type_name}, got {value!r}"
        known = {json: attr for attr, json in model.attribute_map.items()}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise UnknownField(f"{path}: {type_name} has no field {', '.join(unknown)}")
        for key, item in value.items():
            _check(item, model.openapi_types[known[key]], f"{path}.{key}")


def load_strictly(obj: dict[str, Any]) -> Any:
    """The client's model of ``obj``; an unknown field anywhere fails."""
    name = _model_name(obj)
    assert hasattr(k8s, name), f"no model {name} for {obj['apiVersion']} {obj['kind']}"
    _check(obj, name, f"{obj['kind']}/{obj['metadata']['name']}")
    return ApiClient()._ApiClient__deserialize(obj, name)  # type: ignore[attr-defined]


def _objects(values: str, *extra: str) -> Iterator[dict[str, Any]]:
    yield from _rendered(values, *extra)


def _of(values: str, kind: str, *extra: str) -> dict[str, dict[str, Any]]:
    prefix = "portal-"
    return {
        o["metadata"]["name"].removeprefix(prefix): o
        for o in _objects(values, *extra)
        if o["kind"] == kind
    }


# -- the tests ---------------------------------------------------------------------------------


def test_the_edge_runs_the_repositorys_vcl() -> None:
    copy = (CHART / "files" / "portal.vcl").read_text()
    assert copy == (REPO / "deploy" / "edge" / "portal.vcl").read_text(), (
        "deploy/helm/portal/files/portal.vcl differs from deploy/edge/portal.vcl: copy it again"
    )


@pytest.mark.parametrize("values", list(VALUES))
def test_the_chart_lints_strictly(values: str) -> None:
    out = _helm("lint", "--strict", str(CHART), *VALUES[values])
    assert "0 chart(s) failed" in out


def test_an_unknown_field_fails_to_load() -> None:
    deployment = next(o for o in _objects("default") if o["kind"] == "Deployment")
    assert load_strictly(deployment).spec.template.spec.containers  # the real one loads
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(UnknownField, match="readinessProbes"):
        load_strictly(broken)


@pytest.mark.parametrize("values", list(VALUES))
def test_every_rendered_object_loads_into_its_model(values: str) -> None:
    kinds: set[str] = set()
    for obj in _objects(values):
        kinds.add(obj["kind"])
        if obj["apiVersion"].startswith("keda.sh/"):
            unknown = set(obj["spec"]) - KEDA_FIELDS[obj["kind"]]
            assert not unknown, f"{obj['kind']} {obj['metadata']['name']}: {unknown}"
            continue
        load_strictly(obj)
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Job",
    } <= kinds
    assert "Secret" not in kinds, "secrets come from existing Secrets, never from the chart"


@pytest.mark.parametrize("values", list(VALUES))
def test_each_process_is_a_deployment_with_probes_and_a_grace_period_for_its_drain(
    values: str,
) -> None:
    deployments = _of(values, "Deployment")
    assert set(deployments) == {*PROCESSES, "edge"}
    shutdown = yaml.safe_load(
        (PRODUCTION if values == "production" else CHART / "values.yaml").read_text()
    )["shutdown"]
    for name in PROCESSES:
        pod = deployments[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert pod["terminationGracePeriodSeconds"] > (
            shutdown["delaySeconds"] + shutdown["drainSeconds"]
        )
        env = {e["name"]: e for e in container["env"]}
        assert env["SHUTDOWN_DELAY_S"]["value"] == str(shutdown["delaySeconds"])
        assert env["SERVICE_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("values", list(VALUES))
def test_secrets_come_only_from_existing_secrets(values: str) -> None:
    secret_like = re.compile(r"PASSWORD|TOKEN|SECRET|DATABASE_URL|ACCESS_KEY")
    for name, deployment in _of(values, "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            literal = [
                e["name"]
                for e in container.get("env", [])
                if secret_like.search(e["name"]) and "value" in e
            ]
            assert not literal, f"{name} has secrets as values: {literal}"
            refs = [s["secretRef"]["name"] for s in container.get("envFrom", [])]
            assert refs, f"{name} reads no Secret"


@pytest.mark.parametrize("values", list(VALUES))
def test_every_deployment_has_a_disruption_budget_and_each_service_an_autoscaler(
    values: str,
) -> None:
    budgets = _of(values, "PodDisruptionBudget")
    assert set(budgets) == {*PROCESSES, "edge"}
    scaled = set(_of(values, "HorizontalPodAutoscaler")) | set(_of(values, "ScaledObject"))
    assert {*BACKENDS, "web"} <= scaled
    assert not set(_of(values, "HorizontalPodAutoscaler")) & set(_of(values, "ScaledObject"))


def test_consumers_scale_on_lag_with_keda_in_production() -> None:
    objects = _of("production", "ScaledObject")
    normalize = objects["normalize"]["spec"]
    trigger = normalize["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "normalize"
    assert trigger["metadata"]["topic"] == "article.ingested"
    assert trigger["metadata"]["tls"] == "enable"
    auth = _of("production", "TriggerAuthentication")["normalize"]["spec"]
    assert auth["secretTargetRef"][0] == {
        "parameter": "password",
        "name": "portal-normalize",
        "key": "KAFKA_PASSWORD",
    }
    assert "normalize" not in _of("production", "HorizontalPodAutoscaler")


@pytest.mark.parametrize("values", list(VALUES))
def test_databases_are_migrated_once_before_the_rollout(values: str) -> None:
    job = _of(values, "Job")["migrate"]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    steps = job["spec"]["template"]["spec"]["initContainers"]
    assert [s["command"][-1] for s in steps] == list(BACKENDS)
    assert all(s["command"][:3] == ["python", "-m", "portal_runtime.migrate"] for s in steps)
    for name in BACKENDS:
        env = _of(values, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "MIGRATE_ON_START", "value": "false"} in env


@pytest.mark.parametrize("values", list(VALUES))
def test_normalize_fetches_the_desks_images_from_ingest_and_nothing_else_internal(
    values: str,
) -> None:
    def env(name: str) -> dict[str, str]:
        container = _of(values, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    base = env("ingest")["DESK_MEDIA_BASE_URL"]
    allowed = env("normalize")["IMAGE_FETCH_ALLOW_HOSTS"]
    assert base == f"http://{allowed}/v1/desk-media/"
    assert allowed.split(":")[0].endswith("ingest")


def _peers(rule: dict[str, Any]) -> set[str]:
    return {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in rule.get("from", rule.get("to", []))
        if "podSelector" in p and "app.kubernetes.io/name" in p["podSelector"]["matchLabels"]
    }


@pytest.mark.parametrize("values", list(VALUES))
def test_network_policies_allow_only_the_architectures_flows(values: str) -> None:
    policies = _of(values, "NetworkPolicy")
    assert set(policies) == {*PROCESSES, "edge"}  # every pod is selected by its own policy

    def inbound(name: str) -> set[str]:
        return set().union(*(_peers(r) for r in policies[name]["spec"]["ingress"]))

    def outbound(name: str) -> set[str]:
        return set().union(*(_peers(r) for r in policies[name]["spec"].get("egress", [])))

    assert inbound("publishing") == {"edge", "web", "moderation"}
    assert inbound("normalize") == {"publishing"}
    assert inbound("ingest") == {"moderation", "normalize"}  # the desk; its uploaded images
    assert outbound("normalize") == {"ingest"}
    assert inbound("web") == {"edge"}
    assert inbound("edge") == {"edge-purger"}
    assert inbound("edge-purger") == set()
    assert outbound("web") == {"publishing", "search", "engagement"}
    assert outbound("edge") == {"publishing", "web"}
    assert outbound("moderation") == {"ingest", "publishing"}
    assert outbound("search") == set()  # OpenSearch, Kafka, PostgreSQL: infrastructure only
    internet = [
        name
        for name, p in policies.items()
        if any("ipBlock" in peer for r in p["spec"].get("egress", []) for peer in r.get("to", []))
    ]
    assert sorted(internet) == ["ingest", "normalize"]  # feeds and images, no internal address


def test_more_than_one_edge_needs_every_replica_to_purge() -> None:
    helm = helm_binary()
    result = subprocess.run(
        [str(helm), "template", "portal", str(CHART), "--set", "edge.replicas=2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "edge.purgeUrls" in result.stderr
