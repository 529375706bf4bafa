"""The operators' recipes in deploy/ are checked by their own tools (issue 12).

Each tool is a Debian package (systemd, caddy, prometheus); locally a missing one skips with a
message, in CI (CI=true) it fails: `make test` installs them there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_missing

DEPLOY = Path(__file__).parent.parent / "deploy"
UNIT = DEPLOY / "relay.service"
SHIPPED_RELAY = "/opt/relay/.venv/bin/relay"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        service_missing(f"the `{name}` command", FileNotFoundError(name))
    assert path is not None
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)


def unit_lines() -> list[str]:
    return [line.strip() for line in UNIT.read_text(encoding="utf-8").splitlines()]


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path):
    """`systemd-analyze verify` finds nothing wrong in deploy/relay.service (run with the
    relay script of this test environment where the unit names /opt/relay)."""
    analyze = tool("systemd-analyze")
    relay = Path(sys.executable).parent / "relay"
    unit = tmp_path / "relay.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(SHIPPED_RELAY, str(relay)))
    result = run(analyze, "verify", str(unit))
    assert (result.returncode, result.stderr.strip()) == (0, "")


@pytest.mark.parametrize(
    "directive",
    [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/relay",
        "StateDirectory=relay",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
    ],
)
def test_systemd_unit_is_hardened(directive: str):
    """The unit runs relay as a user of its own, with no way to gain privileges and nothing
    writable but its state directory."""
    assert directive in unit_lines()


def test_systemd_unit_makes_only_the_var_dir_writable():
    """The one ReadWritePaths line is the var dir relay is told to use."""
    writable = [line for line in unit_lines() if line.startswith("ReadWritePaths=")]
    assert writable == ["ReadWritePaths=/var/lib/relay"]
    assert "Environment=RELAY_VAR_DIR=/var/lib/relay" in unit_lines()


def test_caddyfile_passes_caddy_validate(tmp_path: Path):
    """`caddy validate` accepts deploy/Caddyfile as shipped."""
    caddy = tool("caddy")
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    result = run(
        caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile", env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Valid configuration" in result.stdout + result.stderr


def test_prometheus_alert_rules_pass_promtool():
    """`promtool check rules` accepts deploy/prometheus-alerts.yml."""
    promtool = tool("promtool")
    result = run(promtool, "check", "rules", str(DEPLOY / "prometheus-alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_prometheus_alert_rules_fire_on_relays_metrics():
    """`promtool test rules`: the rules fire on series shaped like relay's /metrics
    (tests/prometheus-alerts-test.yml)."""
    promtool = tool("promtool")
    result = run(
        promtool, "test", "rules", str(Path(__file__).parent / "prometheus-alerts-test.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
