"""The deployment files in docs/deploy/ (docs/deploy.md) hold what the docs
say of them: the Kubernetes objects validate against the API's schemas and
carry the fields DNS discovery relies on; the systemd unit runs a `tandemkv
serve` whose flags the real parser accepts and that, with the env file,
makes a valid node configuration (and `systemd-analyze verify` accepts it
where systemd is installed); the Containerfile copies files that exist and
a wheel builds from exactly those files."""

from __future__ import annotations

import argparse
import configparser
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tandemkv.server.process import discovery, serve, settings
from tests.support.system_needs import skip_needing

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
# The oldest Kubernetes the manifest is meant for (gRPC probes are GA from 1.27) and the newest schema shipped.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
WHEEL_BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def kube() -> dict[tuple[str, str], dict]:
    documents = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_validates_strictly_against_the_api_schema(kube, version):
    assert set(kube) == {("Service", "tandemkv"), ("Service", "tandemkv-client"),
                         ("StatefulSet", "tandemkv"), ("PodDisruptionBudget", "tandemkv")}
    for document in kube.values():
        kubernetes_validate.validate(document, version, strict=True)


@pytest.fixture(scope="module")
def example_secrets() -> dict[str, dict]:
    documents = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes-secrets.example.yaml").read_text()) if d]
    return {d["metadata"]["name"]: d for d in documents}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_example_secrets_validate_strictly_and_start_nothing_unedited(example_secrets, version):
    assert set(example_secrets) == {"tandemkv-root-password", "tandemkv-cluster-secret"}
    for document in example_secrets.values():
        assert document["kind"] == "Secret"
        kubernetes_validate.validate(document, version, strict=True)
        assert set(document["stringData"].values()) == {""}, "no usable password or secret in the docs"


def test_the_statefulset_passes_the_root_password_file_from_the_secret_mode_0400(kube, example_secrets):
    pod = kube[("StatefulSet", "tandemkv")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    parser = argparse.ArgumentParser(exit_on_error=False)
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", *container["args"]])  # the image's entrypoint is `tandemkv serve`
    path = Path(args.root_password_file)
    volume = next(v for v in pod["volumes"] if v["name"] == "root-password")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "root-password")
    assert mount["readOnly"] is True and path.parent == Path(mount["mountPath"])
    secret = volume["secret"]
    assert secret["defaultMode"] == 0o400
    assert [item["path"] for item in secret["items"]] == [path.name]
    key = secret["items"][0]["key"]
    assert key in example_secrets[secret["secretName"]]["stringData"]
    # The kubelet gives a Secret's files to root with fsGroup's group and adds group read for it: the node
    # accepts exactly that (a root-owned file, group-readable) and nothing wider.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_the_validation_would_catch_a_misspelt_field(kube):
    statefulset = yaml.safe_load(yaml.safe_dump(kube[("StatefulSet", "tandemkv")]))
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSIONS[-1], strict=True)


def container_env(statefulset: dict) -> dict[str, str]:
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_headless_service_publishes_what_dns_srv_discovery_asks_for(kube):
    service = kube[("Service", "tandemkv")]["spec"]
    statefulset = kube[("StatefulSet", "tandemkv")]["spec"]
    assert service["clusterIP"] == "None"
    assert service["publishNotReadyAddresses"] is True, "pods find each other before any is Ready"
    ports = {p["name"]: p["port"] for p in service["ports"]}
    assert set(ports) == {"raft", "client"}  # the SRV records _raft._tcp and _client._tcp
    labels = statefulset["template"]["metadata"]["labels"]
    assert service["selector"] == statefulset["selector"]["matchLabels"] == labels
    assert statefulset["serviceName"] == "tandemkv" and statefulset["podManagementPolicy"] == "Parallel"

    env = container_env(kube[("StatefulSet", "tandemkv")])
    assert env["TANDEMKV_DISCOVERY"] == "dns-srv:tandemkv.$(POD_NAMESPACE).svc.cluster.local"
    assert env["TANDEMKV_NAME"] == "$(POD_NAME)"
    assert env["TANDEMKV_RAFT_ADDRESS"] == f"$(POD_NAME).tandemkv.$(POD_NAMESPACE).svc.cluster.local:{ports['raft']}"
    assert env["TANDEMKV_CLIENT_ADDRESS"].endswith(f".svc.cluster.local:{ports['client']}")
    assert int(env["TANDEMKV_DISCOVERY_EXPECT"]) == statefulset["replicas"]
    container = statefulset["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == ports


def test_a_pod_environment_makes_a_node_config_that_dns_srv_lists_as_itself(kube, tmp_path):
    env = container_env(kube[("StatefulSet", "tandemkv")])
    pod = {"$(POD_NAME)": "tandemkv-1", "$(POD_NAMESPACE)": "prod"}
    environ = {k: re.sub(r"\$\((POD_NAME|POD_NAMESPACE)\)", lambda m: pod[m.group(0)], v)
               for k, v in env.items() if k.startswith("TANDEMKV_")}
    secret = tmp_path / "cluster-secret"
    secret.write_text("s" * 64)
    environ["TANDEMKV_CLUSTER_SECRET_FILE"] = str(secret)
    parser = argparse.ArgumentParser()
    settings.add_flags(parser)
    values = settings.gather(parser.parse_args([]), environ)
    srv = discovery.strategy_for(values)
    assert srv == discovery.DnsServices("tandemkv.prod.svc.cluster.local", 8000, discovery.SRV_TARGET_HOST)

    class ClusterDns:  # what the headless Service publishes for 3 pods
        def services(self, name):
            service, _, domain = name.partition("._tcp.")
            assert domain == "tandemkv.prod.svc.cluster.local"
            port = {"_raft": 7000, "_client": 8000}[service]
            return [(f"tandemkv-{k}.tandemkv.prod.svc.cluster.local", port) for k in range(3)]

    members = srv.members(ClusterDns())
    assert discovery.usable_start(members, values["name"], values["raft_address"], values["discovery_expect"]) is None
    config = settings.node_config({**values, "peers": tuple(m for m in members if m.name != values["name"])})
    assert [m.name for m in config.members] == ["tandemkv-0", "tandemkv-1", "tandemkv-2"]


def unit_file() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((DEPLOY / "tandemkv.service").read_text())
    return unit


def test_the_unit_runs_a_serve_that_the_real_parser_and_settings_accept(tmp_path):
    unit = unit_file()
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert Path(argv[0]).name == "tandemkv" and argv[1] == "serve"
    parser = argparse.ArgumentParser(exit_on_error=False)
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv[1:])  # an unknown flag would exit here
    assert args.run is serve.run
    assert unit["Service"]["EnvironmentFile"] == "/etc/tandemkv/tandemkv.env"
    assert args.root_password_file == "/etc/tandemkv/root-password", "auth from the first start"

    environ = {}
    for line in (DEPLOY / "tandemkv.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            environ[key.strip()] = value.strip()
    assert all(key.startswith("TANDEMKV_") for key in environ)
    args.cluster_secret_file = str(tmp_path / "cluster-secret")  # the unit's path, here
    Path(args.cluster_secret_file).write_text("s" * 64)
    config = settings.node_config(settings.gather(args, environ))
    assert config.name == "n1" and [m.name for m in config.members] == ["n1", "n2", "n3"]
    assert str(config.data_dir).startswith(unit["Service"]["ReadWritePaths"])


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_needing("systemd (apt-get install -y systemd)", "systemd-analyze verifies the unit")
    text = (DEPLOY / "tandemkv.service").read_text()
    # verify checks that ExecStart's program exists: point it at this venv's.
    tandemkv = Path(sys.executable).parent / "tandemkv"
    assert tandemkv.exists(), "the venv's tandemkv command"
    (tmp_path / "tandemkv.service").write_text(text.replace("/opt/tandemkv/venv/bin/tandemkv", str(tandemkv)))
    result = subprocess.run([analyze, "verify", str(tmp_path / "tandemkv.service")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "tandemkv.service" not in result.stderr, result.stderr


def containerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((DEPLOY / "Containerfile").read_bytes()))


def copied_sources() -> list[str]:
    sources = []
    for instruction in containerfile().structure:
        if instruction["instruction"] == "COPY" and not instruction["value"].startswith("--from="):
            *paths, _destination = instruction["value"].split()
            sources += paths
    return sources


def test_the_containerfile_copies_files_that_exist_and_runs_serve():
    parsed = containerfile()
    sources = copied_sources()
    assert sources and all((ROOT / source).exists() for source in sources), sources
    assert json_list(parsed, "ENTRYPOINT") == ["tandemkv", "serve"]
    assert parsed.baseimage.startswith("python:3.11")
    assert "TANDEMKV_RAFT_ADDRESS" not in parsed.envs, "the Raft address is the deployment's, never a default"
    assert parsed.envs["TANDEMKV_DATA_DIR"].startswith(json_list(parsed, "VOLUME")[0])
    user = [i["value"] for i in parsed.structure if i["instruction"] == "USER"]
    assert user and user[-1] != "root" and user[-1] != "0"


def json_list(parsed: DockerfileParser, instruction: str) -> list[str]:
    values = [i["value"] for i in parsed.structure if i["instruction"] == instruction]
    return json.loads(values[-1])


def test_a_wheel_builds_from_exactly_the_files_the_containerfile_copies(tmp_path):
    source = tmp_path / "src"
    for path in copied_sources():
        origin = ROOT / path
        if origin.is_dir():
            shutil.copytree(origin, source / path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / path)
    # As the image builds it: pip's isolated build environment, from these files alone.
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-cache-dir", "--wheel-dir", str(tmp_path / "wheels"), str(source)],
                            capture_output=True, text=True, timeout=WHEEL_BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list((tmp_path / "wheels").glob("tandemkv-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "tandemkv/server/process/discovery.py" in names and "tandemkv/v1/kv_pb2.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tandemkv = tandemkv.server.cli.main:main" in zipfile.ZipFile(wheels[0]).read(entry_points).decode()
