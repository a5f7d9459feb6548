"""The shipped systemd unit: systemd itself accepts it, and it agrees with the agent's own defaults
(state directory, configuration file, exit statuses that must not be restarted)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uus_agent import cli, config

UNIT = Path(__file__).resolve().parents[1] / "uus_agent" / "packaging" / "uus-agent.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNIT)
    return parser


def test_unit_runs_the_service_loop_with_the_agents_defaults() -> None:
    u = unit()
    default_state = config.OPTIONS["state_dir"][1]
    assert u["Service"]["ExecStart"] == "/usr/bin/uus-agent run"
    assert u["Service"]["StateDirectory"] == Path(default_state).relative_to("/var/lib").as_posix()
    assert u["Unit"]["ConditionPathExists"] == default_state + "/credentials.json"
    # revoked (3) and unregistered (4) cannot be cured by a restart: systemd must not loop on them
    statuses = {int(s) for s in u["Service"]["RestartPreventExitStatus"].split()}
    assert statuses == {cli.EXIT_UNAUTHORIZED, cli.EXIT_NOT_REGISTERED}
    assert config.DEFAULT_CONFIG_FILE == "/etc/uus-agent/agent.conf"


@pytest.mark.system
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    agent = Path(sys.executable).with_name("uus-agent")
    if not agent.exists():
        pytest.fail(
            "uus-agent is not installed in this venv: .venv/bin/pip install --no-deps -e agent"
        )
    # The unit as installed, ExecStart pointing at this checkout's agent (verify checks it exists).
    local = tmp_path / "uus-agent.service"
    local.write_text(UNIT.read_text().replace("/usr/bin/uus-agent", str(agent)))
    r = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "uus-agent.service" not in r.stderr, r.stderr  # no warning about our unit either
    # and verify does catch a broken unit, so the check above means something
    (tmp_path / "broken.service").write_text("[Service]\nExecStart=no-such-program run\n")
    broken = subprocess.run(
        [analyze, "verify", str(tmp_path / "broken.service")], capture_output=True, text=True
    )
    assert broken.returncode != 0
