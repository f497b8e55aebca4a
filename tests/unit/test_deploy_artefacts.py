"""The container and Kubernetes artefacts in deploy/, validated offline.

No container engine or Kubernetes cluster runs on the development machines or in CI, so
these files are never started here. What can be checked without one is checked: every YAML
file is linted; each Kubernetes manifest is validated against the Kubernetes 1.30 schemas
that the kubernetes-validate package bundles (strict: an unknown field is an error), and the
CloudNativePG resources against their CRDs' schemas (tests/data/deploy-schemas, made strict
the same way); compose.yaml against the compose specification's schema; the Dockerfile by
its rules. The files must also agree with each other and with the service (names, ports,
the drain time, the settings' names). Each checker is shown to refuse a broken input, so
that a check that passes means something.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from yamllint import linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

from tests.support import paths
from tests.support.nginx import upstream_ports
from transparency.domain.api_keys import parse_api_key
from transparency.runtime.envelope import MasterKey, MasterKeyError
from transparency.runtime.settings import Settings
from transparency.serve.cli import _server_options

DEPLOY = paths.ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SCHEMAS = paths.DATA / "deploy-schemas"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests are meant for

YAMLLINT = YamlLintConfig("""
extends: default
rules:
  line-length: {max: 100}
  document-start: disable
  comments: {min-spaces-from-content: 2}
  truthy: {allowed-values: ["true", "false"], check-keys: false}
""")

Document = dict[str, Any]


def yaml_files() -> list[Path]:
    return sorted(p for ext in ("yaml", "yml") for p in DEPLOY.rglob(f"*.{ext}"))


def load_all(path: Path) -> list[Document]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def lint(text: str) -> list[str]:
    return [f"{p.line}:{p.column} {p.desc} ({p.rule})" for p in linter.run(text, YAMLLINT)]


# --- Kubernetes -------------------------------------------------------------------------

CRD_SCHEMAS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "cnpg-cluster.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "cnpg-scheduledbackup.json",
    ("barmancloud.cnpg.io/v1", "ObjectStore"): "barman-cloud-objectstore.json",
}


def strict(schema: Any) -> Any:
    """A CRD's schema that refuses unknown fields, as kubernetes-validate's strict schemas do.

    The API server prunes unknown fields of a custom resource without a word, so a misspelt
    field (``minSyncReplica``) would be lost in silence; here it is an error.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def schema_errors(schema: Any, doc: Document) -> list[str]:
    """Every place ``doc`` breaks a draft-07 JSON schema (the CRDs' and compose's draft)."""
    found = jsonschema.Draft7Validator(schema).iter_errors(doc)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def crd_schema(api_version: str, kind: str) -> Any:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[api_version, kind]).read_text())
    return strict({k: v for k, v in schema.items() if k != "$comment"})


def kubernetes_errors(doc: Document) -> list[str]:
    """Why the API server would refuse ``doc`` ([] when it would take it)."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in CRD_SCHEMAS:
        return schema_errors(crd_schema(*key), doc)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc}"]
    return []


def manifests() -> list[Document]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load_all(KUBERNETES / name)]


def one(kind: str, docs: list[Document] | None = None) -> Document:
    found = [doc for doc in (manifests() if docs is None else docs) if doc["kind"] == kind]
    assert len(found) == 1, f"one {kind} expected, found {len(found)}"
    return found[0]


def setting_names() -> set[str]:
    return {
        "DATABASE_URL" if name == "database_url" else f"TRANSPARENCY_{name.upper()}"
        for name in Settings.model_fields
    }


# The image's entrypoint reads these (deploy/docker/entrypoint.sh): secrets as files.
ENTRYPOINT_FILES = {"DATABASE_URL_FILE", "TRANSPARENCY_ADMIN_KEY_FILE"}


# --- compose ----------------------------------------------------------------------------


def compose() -> Document:
    loaded: Document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def compose_errors(doc: Document) -> list[str]:
    return schema_errors(json.loads((SCHEMAS / "compose-spec.json").read_text()), doc)


# --- Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    command: str  # upper case: FROM, RUN, ...
    arguments: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def commands(self, command: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.command == command]


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment or a blank line inside a continued instruction too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        command, _, arguments = line.partition(" ")
        command = command.upper()
        if command == "FROM":
            found = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", arguments.strip(), re.I)
            assert found is not None, line
            stages.append(Stage(found.group(1), found.group(2), ()))
        elif stages:
            last = stages[-1]
            added = (*last.instructions, Instruction(command, arguments.strip()))
            stages[-1] = Stage(last.base, last.name, added)
    return stages


FORBIDDEN_IN_IMAGE = ("build-essential", "gcc", "g++", "make ", "pytest", "pgserver", "[embedded")
FORBIDDEN_EXTRAS = ("[embedded", "[dev", "[test", "[load")


def dockerfile_errors(text: str) -> list[str]:
    """Where a Dockerfile breaks the image's rules (deploy/docker/Dockerfile's header)."""
    errors: list[str] = []
    stages = parse_dockerfile(text)
    if len(stages) < 2:
        return ["not multi-stage: the final image must not hold what built it"]
    build, final = stages[0], stages[-1]
    python = f"python:{python_minor()}-slim"
    for stage in stages:
        if stage.base != python:
            errors.append(f"stage {stage.name}: base {stage.base}, not {python} (the lock's)")
    wheels = " ".join(build.commands("RUN"))
    if not re.search(r"pip wheel .*--constraint requirements\.lock", wheels):
        errors.append("the build stage's wheels are not constrained by requirements.lock")
    if not any("requirements.lock" in copied for copied in build.commands("COPY")):
        errors.append("requirements.lock is not copied into the build stage")
    for extra in FORBIDDEN_EXTRAS:
        if extra in wheels:
            errors.append(f"the build stage installs the extra {extra}]")
    final_text = "\n".join(f"{i.command} {i.arguments}" for i in final.instructions)
    for word in FORBIDDEN_IN_IMAGE:
        if word in final_text:
            errors.append(f"the final stage mentions {word.strip()!r}")
    installs = [run for run in final.commands("RUN") if "pip install" in run]
    if not installs or not all("--no-index" in run for run in installs):
        errors.append("the final stage must install only the built wheels (pip --no-index)")
    users = final.commands("USER")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        errors.append("the final stage runs as root (no USER, or USER root)")
    if not any("/healthz" in check for check in final.commands("HEALTHCHECK")):
        errors.append("no HEALTHCHECK on /healthz")
    if not final.commands("EXPOSE"):
        errors.append("no EXPOSE")
    cmd = final.commands("CMD")
    if not cmd or json.loads(cmd[-1])[-2:] != ["transparency", "serve"]:
        errors.append("CMD is not `transparency serve`")
    return errors


def python_minor() -> str:
    header = (paths.ROOT / "requirements.lock").read_text()
    found = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", header)
    assert found is not None
    return found.group(1)


def dockerfile() -> str:
    return (DEPLOY / "docker" / "Dockerfile").read_text()


def final_stage() -> Stage:
    return parse_dockerfile(dockerfile())[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in final_stage().commands("ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", arguments)))
    return env


# --- every YAML file ----------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_lints_clean(path: Path) -> None:
    assert lint(path.read_text()) == []


def test_the_linter_refuses_a_duplicate_key_broken_indentation_and_trailing_space() -> None:
    assert lint("a: 1\na: 2\n")
    assert lint("a:\n  b: 1\n   c: 2\n")
    assert lint("a: 1 \n")


# --- Kubernetes -------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_and_only_those() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def each_manifest() -> list[Any]:
    return [pytest.param(d, id=f"{d['kind']}/{d['metadata']['name']}") for d in manifests()]


@pytest.mark.parametrize("doc", each_manifest())
def test_every_manifest_is_valid_against_its_schema(doc: Document) -> None:
    assert kubernetes_errors(doc) == []


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0, "readinesProbe"), {}),
        ("Deployment", ("spec", "replicas"), "two"),
        ("HorizontalPodAutoscaler", ("spec", "maxReplica"), 10),
        ("Cluster", ("spec", "minSyncReplica"), 1),  # a CRD: misspelt, pruned in silence
        ("Cluster", ("spec", "instances"), "3"),
        ("Cluster", ("spec", "postgresql", "synchronous", "method"), "all"),
        ("ObjectStore", ("spec", "configuration", "destinationPth"), "s3://x/"),
        ("ScheduledBackup", ("spec", "method"), "tape"),
    ],
)
def test_the_schemas_refuse_a_broken_manifest(
    kind: str, path: tuple[str | int, ...], value: object
) -> None:
    broken = copy.deepcopy(one(kind))
    node: Any = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert kubernetes_errors(broken) != []


def test_the_api_reads_its_database_from_the_secret_cloudnativepg_writes() -> None:
    cluster = one("Cluster")
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    database = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"] == {
        "name": f"{cluster['metadata']['name']}-app",  # CNPG's <cluster>-app, key uri
        "key": "uri",
    }
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "app"


def test_postgres_has_three_instances_synchronous_replication_and_backups() -> None:
    cluster = one("Cluster")["spec"]
    assert cluster["instances"] == 3
    synchronous = cluster["postgresql"]["synchronous"]
    assert synchronous["number"] >= 1
    assert synchronous.get("dataDurability", "required") == "required"
    archiver = next(p for p in cluster["plugins"] if p.get("isWALArchiver"))
    store = one("ObjectStore")
    assert archiver["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    assert one("ScheduledBackup")["spec"]["cluster"]["name"] == one("Cluster")["metadata"]["name"]


def test_the_api_pods_probe_drain_and_run_unprivileged() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = _server_options(Settings())["timeout_graceful_shutdown"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    image_user = final_stage().commands("USER")[-1].split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == image_user
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = mounts["/tmp"]  # noqa: S108 (a path read from the manifest: no file is made)
    assert "emptyDir" in volumes[tmp]  # the one place the service writes
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    config = one("ConfigMap")["data"]
    assert int(config["TRANSPARENCY_PORT"]) == ports["http"]
    assert ports["http"] == int(image_env()["TRANSPARENCY_PORT"])
    assert int(config["TRANSPARENCY_STATION_PORT"]) == ports["stations"]
    served = {p["targetPort"] for p in one("Service")["spec"]["ports"]}
    assert served == {"http", "stations"}


def test_service_pdb_and_autoscaler_select_the_api_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert one("Service")["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_the_autoscalers_most_pods_fit_in_postgres_connections() -> None:
    most = one("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    pool = int(one("ConfigMap")["data"]["TRANSPARENCY_POOL_MAX_SIZE"])
    allowed = int(one("Cluster")["spec"]["postgresql"]["parameters"]["max_connections"])
    assert most * (pool + 2) < allowed  # + the notification listener and the job runner


def test_settings_come_from_the_configmap_and_secrets_from_the_secret() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = one("ConfigMap")
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert set(config["data"]) <= setting_names()  # a misspelt name would be ignored
    secret = one("Secret")
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) <= setting_names() | ENTRYPOINT_FILES
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    files = {f"{mount['mountPath']}/{key}" for key in secret["stringData"]}
    assert {env["TRANSPARENCY_MASTER_KEY_FILE"], env["TRANSPARENCY_ADMIN_KEY_FILE"]} == files


def test_the_secret_is_a_template_holding_no_usable_key() -> None:
    data = one("Secret")["stringData"]
    assert parse_api_key(data["admin-key"]) is None
    with pytest.raises(MasterKeyError):
        MasterKey.from_text(data["master-key"])


# --- compose ----------------------------------------------------------------------------


def test_compose_is_valid_against_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("api1", "depends_on", {"pg1": {"condition": "service_happy"}}),
        ("api1", "stop_grace_perod", "45s"),
        ("lb", "ports", "443:443"),
    ],
)
def test_the_compose_schema_refuses_a_broken_file(service: str, key: str, value: object) -> None:
    broken = compose()
    broken["services"][service][key] = value
    assert compose_errors(broken) != []


def test_compose_runs_the_clusters_topology() -> None:
    services = compose()["services"]
    etcd = [name for name, s in services.items() if "etcd" in s.get("image", "")]
    postgres = [name for name, s in services.items() if "spilo" in s.get("image", "")]
    api = [name for name, s in services.items() if "build" in s]
    assert (len(etcd), len(postgres), len(api)) == (3, 3, 2)
    for name in postgres:
        config = yaml.safe_load(services[name]["environment"]["SPILO_CONFIGURATION"])
        assert config["bootstrap"]["dcs"]["synchronous_mode"] is True
        assert services[name]["environment"]["PGVERSION"] == "15"
    haproxy = (DEPLOY / "docker" / "haproxy.cfg").read_text()
    assert "option httpchk GET /primary" in haproxy  # writes go to the Patroni leader only
    assert sorted(re.findall(r"^\s*server (\w+) \1:5432 check port 8008$", haproxy, re.M)) == (
        sorted(postgres)
    )


def test_compose_serves_through_nginx_conf_as_it_is() -> None:
    services = compose()["services"]
    api = {name: s for name, s in services.items() if "build" in s}
    for upstream, setting in (("transparency", "TRANSPARENCY_PORT"),
                              ("stations", "TRANSPARENCY_STATION_PORT")):  # fmt: skip
        ports = sorted(upstream_ports(upstream))
        assert sorted(int(s["environment"][setting]) for s in api.values()) == ports
    for service in api.values():
        assert service["network_mode"] == "service:lb"  # nginx's 127.0.0.1 is theirs
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert service["environment"]["TRANSPARENCY_HOST"] == "127.0.0.1"
        assert service["stop_grace_period"] == "45s"  # > the 30 s drain
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["lb"]["volumes"]


def test_compose_passes_secrets_as_files_and_settings_by_their_names() -> None:
    document = compose()
    declared = set(document["secrets"])
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    for service in document["services"].values():
        used = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
        assert used <= declared
        if "build" not in service:
            continue
        env = service["environment"]
        assert set(env) <= setting_names() | ENTRYPOINT_FILES
        assert not {"DATABASE_URL", "TRANSPARENCY_MASTER_KEY", "TRANSPARENCY_ADMIN_KEY"} & set(env)
        for name in ENTRYPOINT_FILES:
            assert f"${{{name}:-}}" in entrypoint
            assert env[name].removeprefix("/run/secrets/") in used


# --- Dockerfile ---------------------------------------------------------------------------


def test_the_dockerfile_keeps_the_images_rules() -> None:
    assert dockerfile_errors(dockerfile()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("USER 10001:10001", "USER root"),
        ("USER 10001:10001", ""),
        ("--no-install-recommends libzbar0", "--no-install-recommends libzbar0 build-essential"),
        ("--no-install-recommends libzbar0", "--no-install-recommends gcc libzbar0"),
        ("--find-links /wheels transparency", "--find-links /wheels transparency pytest"),
        ("--no-index ", ""),
        ("--constraint requirements.lock ", ""),
        ("--wheel-dir /wheels .", "--wheel-dir /wheels .[embedded]"),
        ("HEALTHCHECK", "# HEALTHCHECK"),
        ("FROM python:3.11-slim AS runtime", "FROM python:3.12-slim AS runtime"),
    ],
)
def test_the_dockerfile_rules_refuse_a_broken_file(old: str, new: str) -> None:
    text = dockerfile()
    assert old in text
    assert dockerfile_errors(text.replace(old, new, 1)) != []


def test_a_single_stage_dockerfile_is_refused() -> None:
    text = dockerfile()
    final = text[text.index("FROM python:3.11-slim AS runtime") :]
    assert dockerfile_errors(final) != []


def test_the_image_has_no_embedded_database_so_it_needs_database_url() -> None:
    """Without pgserver, serve refuses to start unless DATABASE_URL is set (embedded.py)."""
    build_runs = " ".join(parse_dockerfile(dockerfile())[0].commands("RUN"))
    assert re.search(r"pip wheel .* \.$", build_runs)  # the project, no extras
    assert "DATABASE_URL" not in image_env()
