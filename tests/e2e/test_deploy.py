"""deploy/: the systemd unit, the image and the compose sidecar, checked as far as tools allow.

There is no container engine here: the image's command lines (ENTRYPOINT, CMD, HEALTHCHECK)
and the unit's (ExecStartPre, ExecStart) are read out of their files and run with the real
CLI, with only the installed paths substituted. The sandbox the unit and compose ask for is
approximated with what the kernel offers directly: a read-only file system in a private
mount namespace, and the kernel's "memory deny write execute" (PR_SET_MDWE).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Launch
from tests.sidecar import STARTUP_TIMEOUT_S, free_port, write_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "astra.service"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "astra.env.example"

INSTALLED_CONFIG = "/etc/astra/config.toml"
UNIT_BINARY = "/opt/astra/bin/astra"
FIX = "pip install 'astra-sidecar[discordpy]'"


# --- helpers -----------------------------------------------------------------------------


def _astra() -> str:
    """The ``astra`` console script of the interpreter running the tests."""
    found = shutil.which("astra", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("the astra console script is not installed: pip install -e '.[test]'")
    return found


def _unit() -> dict[str, list[tuple[str, str]]]:
    """The unit file as systemd reads it: sections of (key, value) lines, in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(UNIT.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {number}: keep every setting on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {number}: a setting before any section"
        key, sep, value = line.partition("=")
        assert sep, f"line {number}: not KEY=value: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    """Every value of ``key`` in a unit-file section."""
    return [value for name, value in section if name == key]


def _one(section: list[tuple[str, str]], key: str) -> str:
    """The one value of ``key`` in a unit-file section; fails when it is absent or repeated."""
    values = _values(section, key)
    assert len(values) == 1, f"{key}: expected once, found {values}"
    return values[0]


def _dockerfile_json(instruction: str) -> list[str]:
    """The JSON (exec form) argument list of a Dockerfile instruction, continuations joined."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = re.findall(rf"^{instruction}\s+(.*)$", text, flags=re.MULTILINE)
    assert len(found) == 1, f"{instruction}: expected once in the Dockerfile, found {found}"
    arguments = found[0]
    if instruction == "HEALTHCHECK":
        _, sep, arguments = arguments.partition(" CMD ")
        assert sep, "HEALTHCHECK: expected '… CMD [json]'"
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), value
    return value


def _healthcheck(port: int) -> list[str]:
    """The image's HEALTHCHECK argv for this interpreter, probing ``port``."""
    argv = _dockerfile_json("HEALTHCHECK")
    assert argv[0] == "python"
    assert argv[1:].count("-c") == 1 and sum("127.0.0.1:8787" in a for a in argv) == 1
    return [sys.executable, *(a.replace("127.0.0.1:8787", f"127.0.0.1:{port}") for a in argv[1:])]


def _env_example() -> dict[str, str]:
    """deploy/astra.env.example as the environment systemd or compose would build from it."""
    env: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), raw
            env[key] = value
    return env


def _compose_blocks() -> dict[str, list[str]]:
    """deploy/compose.yaml's services as their non-comment lines (it is written in blocks)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_services = False
    for raw in COMPOSE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        line = raw.rstrip()
        if not line.startswith(" "):
            in_services = line.rstrip() == "services:"
            current = None
        elif in_services and re.fullmatch(r"  [a-z][a-z0-9_-]*:", line):
            current = blocks.setdefault(line.strip()[:-1], [])
        elif current is not None:
            current.append(line)
    return blocks


def _key(block: list[str], key: str) -> str:
    """The value of a service's direct (4-space) key, without a trailing comment."""
    found = [line.split(":", 1)[1].strip() for line in block if line.startswith(f"    {key}:")]
    assert len(found) == 1, f"{key}: expected once, found {found}"
    return re.sub(r"\s+#.*$", "", found[0])


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or a standalone ``docker-compose``; None when neither."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def _compose_env(tmp_path: Path) -> dict[str, str]:
    """The environment for compose: the env file it names made from the shipped example."""
    env_file = tmp_path / "astra.env"
    shutil.copyfile(ENV_EXAMPLE, env_file)
    return {**os.environ, "ASTRA_ENV_FILE": str(env_file)}


@contextmanager
def _running(argv: list[str], port: int) -> Iterator[subprocess.Popen[str]]:
    """``argv`` (an ``astra run``) started and answering /healthz on ``port``; killed after."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(process, port)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _wait_healthy(process: subprocess.Popen[str], port: int) -> None:
    """Until /healthz answers on ``port``; fails with the output if the process ends first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return
        except OSError:
            time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    out, err = process.communicate()
    pytest.fail(f"astra did not answer /healthz:\n{err}\n{out}")


def _post(port: int, event: dict[str, Any]) -> int:
    """POST one event to the ingest on ``port``; the HTTP status."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGTERM, then the exit status, stdout and stderr."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


# --- the systemd unit --------------------------------------------------------------------

HARDENING = {
    "DynamicUser": "yes",
    "Restart": "on-failure",
    "EnvironmentFile": "/etc/astra/astra.env",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}
# Any of these would give astra a writable path, which it must never need.
WRITABLE = (
    "ReadWritePaths",
    "ReadWriteDirectories",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "RuntimeDirectory",
    "ConfigurationDirectory",
    "TemporaryFileSystem",
    "BindPaths",
)


def test_unit_declares_the_hardened_service_with_no_writable_path() -> None:
    """The unit has [Unit]/[Service]/[Install], the hardening settings, and no writable path."""
    unit = _unit()
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert _one(service, key) == value, key
    families = _one(service, "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]
    assert _one(service, "ProtectProc") != "invisible"  # would hide the watched bot
    assert re.fullmatch(r"\d+[KMG]", _one(service, "MemoryMax"))
    for key in WRITABLE:
        assert not _values(service, key), f"{key} gives astra a writable path"
    assert "PrivateNetwork" not in dict(service)  # the bot reaches ingest on 127.0.0.1
    assert _one(unit["Install"], "WantedBy") == "multi-user.target"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit, pointed at this machine's astra."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (the parse test still runs)")
    env_file = tmp_path / "astra.env"
    shutil.copyfile(ENV_EXAMPLE, env_file)
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(UNIT_BINARY) == 2
    copy = tmp_path / "astra.service"
    copy.write_text(
        text.replace(UNIT_BINARY, _astra()).replace("/etc/astra/astra.env", str(env_file)),
        encoding="utf-8",
    )
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120
    )
    about_unit = [
        line for line in (result.stdout + result.stderr).splitlines() if "astra.service" in line
    ]
    assert result.returncode == 0 and about_unit == [], result.stdout + result.stderr


def test_unit_exec_start_pre_checks_the_config_that_exec_start_runs() -> None:
    """ExecStartPre is ``astra check`` on ExecStart's config, and passes on the shipped one."""
    service = _unit()["Service"]
    pre = shlex.split(_one(service, "ExecStartPre"))
    start = shlex.split(_one(service, "ExecStart"))
    assert pre == [UNIT_BINARY, "check", "--config", INSTALLED_CONFIG]
    assert start == [UNIT_BINARY, "run", "--config", INSTALLED_CONFIG]
    argv = [_astra() if a == UNIT_BINARY else a for a in pre]
    argv = [str(REPO / "config.toml") if a == INSTALLED_CONFIG else a for a in argv]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, **_env_example()}
    )
    assert result.returncode == 0, result.stderr
    assert ": ok (" in result.stdout


# --- the image ---------------------------------------------------------------------------


def test_image_entrypoint_checks_the_config_its_command_runs() -> None:
    """ENTRYPOINT with ``check`` and CMD's options (the documented smoke) exits 0 with "ok"."""
    entrypoint = _dockerfile_json("ENTRYPOINT")
    command = _dockerfile_json("CMD")
    assert entrypoint == ["astra"]
    assert command == ["run", "--config", INSTALLED_CONFIG]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f"COPY config.toml {INSTALLED_CONFIG}" in text  # what the smoke checks
    assert f"docker run --rm astra check --config {INSTALLED_CONFIG}" in text
    argv = [_astra(), *entrypoint[1:], "check", *command[1:]]
    argv = [str(REPO / "config.toml") if a == INSTALLED_CONFIG else a for a in argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ": ok (" in result.stdout


def test_image_default_command_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """ENTRYPOINT+CMD as the image runs it serves /healthz and exits 0 on ``docker stop``."""
    port = free_port()
    config = write_config(tmp_path / "config.toml", port)
    argv = [_astra(), *_dockerfile_json("ENTRYPOINT")[1:], *_dockerfile_json("CMD")]
    argv = [str(config) if a == INSTALLED_CONFIG else a for a in argv]
    with _running(argv, port) as process:
        assert _post(port, {"kind": "command", "name": "ping"}) == 200
        status, out, err = _stop(process)
    assert status == 0, err
    assert "ping" in out  # delivered (previewed) before exiting


def test_healthcheck_passes_against_a_running_sidecar(launch: Launch) -> None:
    """The image's HEALTHCHECK command exits 0 against a running ``astra run``."""
    sidecar = launch()
    result = subprocess.run(_healthcheck(sidecar.port), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_with_status_1_when_nothing_listens() -> None:
    """The HEALTHCHECK command exits 1 (Docker's "unhealthy") when nothing listens."""
    result = subprocess.run(_healthcheck(free_port()), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Connection refused" in result.stderr


def test_healthcheck_ignores_proxy_settings(launch: Launch) -> None:
    """The HEALTHCHECK probes 127.0.0.1 directly even when the container sets a proxy."""
    sidecar = launch()
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens: using it would fail
    env = {**os.environ, "http_proxy": proxy, "HTTP_PROXY": proxy, "no_proxy": ""}
    result = subprocess.run(
        _healthcheck(sidecar.port), capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr


# --- compose -----------------------------------------------------------------------------


def test_compose_runs_astra_read_only_beside_the_bot_on_loopback() -> None:
    """compose.yaml: both containers share one namespace, astra read-only with no tmpfs."""
    blocks = _compose_blocks()
    assert set(blocks) == {"pod", "astra", "bot"}
    astra, bot, pod = blocks["astra"], blocks["bot"], blocks["pod"]
    assert _key(astra, "network_mode") == '"service:pod"'
    assert _key(bot, "network_mode") == '"service:pod"'
    for block in (astra, pod):
        assert _key(block, "read_only") == "true"
        assert _key(block, "cap_drop") == "[ALL]"
    for block in (astra, bot, pod):
        assert _key(block, "restart") == "unless-stopped"
        assert not any(line.strip().startswith(("tmpfs", "ports")) for line in block)
    assert json.loads(_key(astra, "command")) == _dockerfile_json("CMD")
    assert _key(astra, "env_file")
    mounts = [line.strip() for line in astra if line.startswith("      - ")]
    assert mounts == [f"- ${{ASTRA_CONFIG_FILE:-../config.toml}}:{INSTALLED_CONFIG}:ro"]
    test_lines = [line.strip() for line in astra if line.strip().startswith("test:")]
    assert len(test_lines) == 1
    assert json.loads(test_lines[0].removeprefix("test:")) == [
        "CMD",
        *_dockerfile_json("HEALTHCHECK"),
    ]


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    """``docker compose config -q`` accepts compose.yaml (no engine needed)."""
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed here")
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_compose_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_model(tmp_path: Path) -> dict[str, Any] | None:
    """compose.yaml as data: PyYAML if installed, else ``docker compose config --format json``."""
    try:
        import yaml
    except ImportError:
        pass
    else:
        loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
        return loaded
    compose = _compose_command()
    if compose is None:
        return None
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_compose_env(tmp_path),
    )
    try:
        # docker-compose 1.x has no --format: it prints its usage and exits 0.
        model: dict[str, Any] | None = json.loads(result.stdout) if result.returncode == 0 else None
    except json.JSONDecodeError:
        return None
    return model


def test_compose_model_as_compose_reads_it(tmp_path: Path) -> None:
    """The compose model (PyYAML or ``config --format json``) has the sidecar's settings."""
    model = _compose_model(tmp_path)
    if model is None:
        pytest.skip(
            "no YAML reader here: PyYAML is not installed and no docker compose gives "
            "`config --format json` (the line-based compose test still runs)"
        )
    services = model["services"]
    astra = services["astra"]
    assert astra["read_only"] is True and "tmpfs" not in astra
    assert astra["network_mode"] == services["bot"]["network_mode"] == "service:pod"
    assert astra["command"] == _dockerfile_json("CMD")
    assert astra["healthcheck"]["test"] == ["CMD", *_dockerfile_json("HEALTHCHECK")]
    assert astra["restart"] == "unless-stopped"
    assert astra["env_file"]
    volume = astra["volumes"][0]
    if isinstance(volume, str):
        assert volume.endswith(f":{INSTALLED_CONFIG}:ro")
    else:
        assert volume["target"] == INSTALLED_CONFIG and volume["read_only"] is True


# --- a sandbox like the unit's and compose's ---------------------------------------------

# Remount every file system read-only in a private mount namespace (what ProtectSystem=strict
# and `read_only: true` amount to for astra), leaving the kernel's /proc, /sys and /dev.
READ_ONLY_WRAPPER = """
import os, subprocess, sys
for line in open("/proc/self/mounts"):
    target = line.split()[1].replace("\\\\040", " ")
    if target.split("/")[1] not in ("proc", "sys", "dev"):
        subprocess.run(["mount", "-o", "remount,bind,ro", target], capture_output=True)
os.execv(sys.argv[1], sys.argv[1:])
"""

# What systemd applies for MemoryDenyWriteExecute=yes on kernels that have it (PR_SET_MDWE,
# Linux 6.3+; inherited across execve). Exit 77: the kernel lacks it.
MDWE_WRAPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""


def _read_only(argv: list[str]) -> list[str]:
    """``argv`` in a private mount namespace, every mount but /proc, /sys and /dev read-only."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed here")
    return [unshare, "--mount", sys.executable, "-c", READ_ONLY_WRAPPER, *argv]


def test_sidecar_runs_on_a_read_only_file_system(tmp_path: Path) -> None:
    """With every file system read-only, ``astra check`` and ``astra run`` work and exit 0."""
    probe = tmp_path / "probe"
    write = f"open({str(probe)!r}, 'w')"
    result = subprocess.run(
        _read_only([sys.executable, "-c", write]), capture_output=True, text=True, timeout=60
    )
    if "Read-only file system" not in result.stderr:
        pytest.skip(f"cannot make a read-only mount namespace here: {result.stderr.strip()}")
    assert not probe.exists()
    port = free_port()
    config = write_config(tmp_path / "config.toml", port, "[flush]\ninterval = 0.3\n")
    check = subprocess.run(
        _read_only([_astra(), "check", "--config", str(config)]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and ": ok (" in check.stdout, check.stderr
    with _running(_read_only([_astra(), "run", "--config", str(config)]), port) as process:
        assert _post(port, {"kind": "error", "message": "read-only ok"}) == 200
        status, out, err = _stop(process)
    assert status == 0, err
    assert "read-only ok" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_sidecar_runs_with_memory_deny_write_execute(tmp_path: Path) -> None:
    """Under the kernel's memory-deny-write-execute, ``astra run`` serves and exits 0."""
    wrapper = [sys.executable, "-c", MDWE_WRAPPER]
    probe = "import ctypes; print(ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))"  # PR_GET_MDWE
    result = subprocess.run(
        [*wrapper, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert result.stdout.strip() == "1", result.stderr  # in force after execve
    port = free_port()
    config = write_config(tmp_path / "config.toml", port, "[flush]\ninterval = 0.3\n")
    with _running([*wrapper, _astra(), "run", "--config", str(config)], port) as process:
        assert _post(port, {"kind": "command", "name": "mdwe"}) == 200
        status, out, err = _stop(process)
    assert status == 0, err
    assert "mdwe" in out


# --- discord.py is the bot's dependency, not the sidecar's -------------------------------


def test_discordpy_is_an_optional_extra() -> None:
    """discord.py is in the ``discordpy`` and ``test`` extras, not in the sidecar's dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() for r in requirements}

    assert "discord.py" not in names(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "discord.py" in names(extras["discordpy"])
    assert "discord.py" in names(extras["test"])


def test_only_the_extension_imports_discord() -> None:
    """Within astra/, only the extension's modules import discord (read from the source).

    ``_capture`` attaches to the bot; ``_commands`` is its ``/astra`` group, imported by it.
    """
    importers = set()
    for path in sorted((REPO / "astra").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            if any(m == "discord" or m.startswith("discord.") for m in modules):
                importers.add(path.relative_to(REPO).as_posix())
    assert importers == {"astra/client/_capture.py", "astra/client/_commands.py"}


def test_sidecar_never_loads_discord() -> None:
    """Importing the sidecar (astra.app, astra.cli) leaves discord out of sys.modules."""
    code = "import astra.app, astra.cli, sys; assert 'discord' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_extension_without_discordpy_names_the_fix_in_one_line() -> None:
    """Without discord.py, importing astra.client.discordpy is one ImportError naming the fix."""
    # None in sys.modules is how Python marks a module as not importable.
    code = "import sys; sys.modules['discord'] = None; import astra.client.discordpy"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"ImportError: astra.client.discordpy needs discord.py: {FIX}"
    assert "ModuleNotFoundError" not in result.stderr  # no chained second traceback
