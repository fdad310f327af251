"""Model archives (real torch-model-archiver) and the deploy files, checked on paper.

The Dockerfile and the KServe manifest cannot run here: they are parsed and checked for the
settings that matter (loopback binding, token authorization, no model API, local archives only).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

import sdk
from sdk.errors import BadOptionError, StylePackageError
from sdk.package import Manifest, StylePackage, write_package
from sdk.serving.archive import DEFAULT_CONFIG_DIR, build_archive
from sdk.serving.server import DEFAULT_CONFIG, _pick_models, read_properties

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


class _Tint(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tint_package(tmp_path_factory: pytest.TempPathFactory) -> StylePackage:
    manifest = Manifest(name="tint", kind="feedforward", model_file="tint.pt", description="test tint")
    return write_package(torch.jit.script(_Tint()), tmp_path_factory.mktemp("tint"), manifest)


def test_archive_holds_handler_package_and_model_config(tint_package: StylePackage, tmp_path: Path) -> None:
    info = build_archive(tint_package, tmp_path)
    mar = Path(info.archive)
    assert mar == tmp_path / "tint.mar"
    assert info.sha256 == hashlib.sha256(mar.read_bytes()).hexdigest()
    assert (tmp_path / "tint.mar.sha256").read_text() == f"{info.sha256}  tint.mar\n"
    assert info.styles == ["tint"] and info.kind == "feedforward"
    with zipfile.ZipFile(mar) as zf:
        names = set(zf.namelist())
        assert {"stylize_handler.py", "tint.pt", "tint.json", "MAR-INF/MANIFEST.json"} <= names
        manifest = json.loads(zf.read("MAR-INF/MANIFEST.json"))
        assert manifest["model"]["handler"] == "stylize_handler.py"
        assert manifest["model"]["serializedFile"] == "tint.pt"
        config = yaml.safe_load(zf.read(manifest["model"]["configFile"]))
        assert config["batchSize"] >= 1 and config["responseTimeout"] > 0
        assert json.loads(zf.read("tint.json"))["files"]["tint.pt"] == tint_package.manifest.files["tint.pt"]


def test_archive_cli_prints_json_summary(tint_package: StylePackage, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdk.cli",
            "archive",
            str(tint_package.root / "tint.json"),
            "-o",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    [summary] = json.loads(done.stdout)
    assert summary["name"] == "tint"
    assert summary["sha256"] == hashlib.sha256((tmp_path / "tint.mar").read_bytes()).hexdigest()


def test_a_package_failing_its_checksum_is_not_archived(tint_package: StylePackage, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("tint.pt", "tint.json"):
        (broken / name).write_bytes((tint_package.root / name).read_bytes())
    with open(broken / "tint.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(StylePackageError, match="checksum"):
        build_archive(StylePackage(tint_package.manifest, broken), tmp_path / "out")
    assert not (tmp_path / "out" / "tint.mar").exists()


def test_models_to_serve_must_have_archives(tmp_path: Path) -> None:
    with pytest.raises(BadOptionError, match="stylekit archive"):
        _pick_models(tmp_path, "all")
    (tmp_path / "a.mar").write_bytes(b"")
    (tmp_path / "b.mar").write_bytes(b"")
    assert _pick_models(tmp_path, "all") == ["a", "b"]
    assert _pick_models(tmp_path, "b") == ["b"]
    with pytest.raises(BadOptionError, match="No archive for c"):
        _pick_models(tmp_path, "a,c")


def _check_locked_down(props: dict[str, str]) -> None:
    assert props["disable_token_authorization"] == "false"
    assert props["enable_model_api"] == "false"
    assert props["grpc_inference_address"] == props["grpc_management_address"] == "127.0.0.1"
    assert props["allowed_urls"].startswith("^file://")
    assert int(props["max_request_size"]) >= 50 * 2**20
    assert int(props["max_response_size"]) >= int(props["max_request_size"])
    assert int(props["default_response_timeout"]) >= 120


def test_local_config_binds_loopback_with_tokens_and_no_model_api() -> None:
    props = read_properties(DEFAULT_CONFIG)
    _check_locked_down(props)
    for key in ("inference_address", "management_address", "metrics_address"):
        assert props[key].startswith("http://127.0.0.1:"), key


def test_container_configs() -> None:
    docker = read_properties(DEPLOY / "docker" / "config.properties")
    _check_locked_down(docker)
    kserve = read_properties(DEPLOY / "kserve" / "config.properties")
    # Under KServe the ingress authenticates (documented); management stays on the pod's loopback.
    assert kserve["disable_token_authorization"] == "true"
    assert kserve["management_address"].startswith("http://127.0.0.1:")
    assert kserve["enable_model_api"] == "false"
    assert kserve["grpc_inference_address"] == "127.0.0.1"


@pytest.mark.parametrize("path", sorted(DEFAULT_CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_model_configs(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    assert set(config) >= {"minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout"}
    assert 1 <= config["minWorkers"] <= config["maxWorkers"]
    assert config["batchSize"] >= 1 and config["maxBatchDelay"] >= 0 and config["responseTimeout"] > 0


def test_kserve_inference_service() -> None:
    doc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    predictor = doc["spec"]["predictor"]
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
    [container] = predictor["containers"]
    assert container["name"] == "kserve-container"  # the name KServe routes to
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TS_CONFIG_FILE"] == "/home/model-server/config.kserve.properties"
    assert container["ports"][0]["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


DOCKER_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word, rest.strip()))
    return out


def test_gpu_dockerfile_is_well_formed() -> None:
    instructions = _dockerfile_instructions((DEPLOY / "Dockerfile.gpu").read_text())
    assert all(word in DOCKER_INSTRUCTIONS for word, _ in instructions), instructions
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for word, rest in instructions
        if word == "ARG" and "=" in rest
    }
    base = next(rest for word, rest in instructions if word == "FROM")
    assert re.fullmatch(r"pytorch/torchserve:[\w.]+-gpu", args[base.strip("${}")])
    for word, rest in instructions:
        if word == "COPY":
            *sources, _ = [p for p in shlex.split(rest) if not p.startswith("--")]
            assert all((REPO / src).exists() for src in sources), rest
        if word in ("ENTRYPOINT", "CMD"):
            json.loads(rest)  # exec form
    entrypoint = json.loads(next(rest for word, rest in instructions if word == "ENTRYPOINT"))
    # The base image's "serve" entrypoint would turn token authorization off.
    assert entrypoint[:3] == ["torchserve", "--start", "--foreground"]
    assert "--disable-token-auth" not in entrypoint and "--enable-model-api" not in entrypoint


@pytest.mark.parametrize("script", ["start.sh", "stop.sh"])
def test_scripts_parse(script: str) -> None:
    subprocess.run(["bash", "-n", str(DEPLOY / script)], check=True)


def test_building_an_archive_imports_neither_handlers_nor_training(tint_package: StylePackage,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    # Dependencies point one way: handlers and training import sdk, never the reverse.
    model = str(tint_package.root / tint_package.manifest.model_file)
    code = (
        "import sys\n"
        "from sdk.package import read_package\n"
        "from sdk.serving.archive import build_archive\n"
        f"build_archive(read_package({model!r}), {str(tmp_path)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('handlers', 'training')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=300)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_the_wheel_ships_what_serve_and_archive_read(tmp_path: Path) -> None:
    """`stylekit serve start` and `stylekit archive` read their configs from the package, so an
    installed copy finds them (it found nothing under site-packages/deploy/ before)."""
    package = Path(sdk.__file__).resolve().parent
    assert DEFAULT_CONFIG.is_relative_to(package) and DEFAULT_CONFIG_DIR.is_relative_to(package)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("stylekit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPO)) for p in [DEFAULT_CONFIG, *DEFAULT_CONFIG_DIR.glob("*.yaml")]}
    assert shipped <= names and "sdk/serving/config/model-config/multistyle26.yaml" in names
