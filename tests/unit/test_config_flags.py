"""The command line, the config file's presence, $BOXNET_HOST, --validate, defaults, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet.config import (
    DEFAULT_ADDRESS_POOLS,
    ConfigErrors,
    ConfigProblem,
    DaemonConfig,
    render_problems,
    resolve_config,
)
from boxnet.config import resolve as resolve_module
from boxnet.errors import ConfigError, InvalidArgument

DATA = Path(__file__).resolve().parent.parent / "data" / "daemon-json"
EMPTY = str(DATA / "empty-object.json")


def bad(*argv: str, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigErrors) as info:
        resolve_config(list(argv), env=env or {})
    return info.value.errors


def test_defaults_are_dockers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    absent = tmp_path / "absent.json"
    monkeypatch.setattr(resolve_module, "DEFAULT_CONFIG_FILE", str(absent))
    config = resolve_config([], env={})  # the default file is absent: defaults, no error
    assert config == DaemonConfig(config_file=absent)
    assert config.host == "/run/boxnet.sock"
    assert (str(config.data_root), str(config.exec_root)) == ("/var/lib/boxnet", "/run/boxnet")
    assert (config.mtu, str(config.ip), config.firewall_backend) == (1500, "0.0.0.0", "nftables")
    assert config.ip_masq and config.icc and config.ip_forward and config.iptables
    assert config.bridge is None and config.bip is None and config.validate_only is False
    assert str(config.default_bridge_address) == "172.17.0.1/16"
    assert [(str(b), s) for b, s in config.default_address_pools] == [
        ("172.17.0.0/16", 16), ("172.18.0.0/16", 16), ("172.19.0.0/16", 16), ("172.20.0.0/14", 16),
        ("172.24.0.0/14", 16), ("172.28.0.0/14", 16), ("192.168.0.0/16", 20),
    ]  # fmt: skip
    assert config.default_address_pools == DEFAULT_ADDRESS_POOLS
    assert config.sources["mtu"] == "default" and config.sources["config-file"] == "default"


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    [problem] = bad("--config-file", str(tmp_path / "nope.json"))
    assert problem.headline() == f"flag --config-file: {tmp_path}/nope.json: no such file"
    [problem] = bad("--config-file", str(tmp_path))
    assert problem.message == f"{tmp_path} is a directory, not a JSON file"


def test_relative_config_file_is_read_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(DATA)
    assert resolve_config(["--config-file", "empty-object.json"], env={}).config_file == Path(EMPTY)


def test_validate_flag() -> None:
    assert resolve_config(["--config-file", EMPTY, "--validate"], env={}).validate_only is True
    assert (
        resolve_config(["--config-file", EMPTY, "--validate=false"], env={}).validate_only is False
    )
    [problem] = bad("--config-file", EMPTY, "--validate=maybe")
    assert problem.source == "flag --validate"


def test_host_from_env_flag_or_file(tmp_path: Path) -> None:
    env = {"BOXNET_HOST": "unix:///tmp/env.sock"}
    config = resolve_config(["--config-file", EMPTY], env=env)
    assert (config.host, config.sources["hosts"]) == ("/tmp/env.sock", "env BOXNET_HOST")
    assert (
        resolve_config(["--config-file", EMPTY, "-H", "/tmp/flag.sock"], env=env).host
        == "/tmp/flag.sock"
    )
    path = tmp_path / "daemon.json"
    path.write_text('{"hosts": ["unix:///tmp/file.sock"]}')
    assert resolve_config(["--config-file", str(path)], env=env).host == "/tmp/file.sock"
    [problem] = bad("--config-file", EMPTY, env={"BOXNET_HOST": "tcp://x:1"})
    assert problem.source == "env BOXNET_HOST"


def test_flag_given_twice() -> None:
    [problem] = bad("--config-file", EMPTY, "--mtu", "1400", "--mtu", "1500")
    assert problem.headline() == (
        "flag --mtu: mtu: given twice (--mtu 1400, then --mtu 1500); it takes one value"
    )


def test_unknown_flags_and_arguments() -> None:
    problems = bad("--config-file", EMPTY, "--fixed-cidrr", "10.0.0.0/8", "--dns-opts=rotate", "x")
    assert [(p.message, p.hint) for p in problems] == [
        ("unknown flag --fixed-cidrr", "did you mean --fixed-cidr?"),
        ("unknown flag --dns-opts", "did you mean --dns-opt?"),
        ("unexpected argument 'x': boxnetd takes only flags", "see boxnetd --help"),
    ]
    # No abbreviations: Docker has none, and `--fixed` must not silently mean --fixed-cidr.
    assert bad("--config-file", EMPTY, "--fixed", "10.0.0.0/8")[0].message == "unknown flag --fixed"


def test_usage_error_is_a_config_error() -> None:
    [problem] = bad("--mtu")
    assert problem.headline() == "command line: argument --mtu: expected one argument"


def test_flag_problems_are_shown_with_the_files_syntax_problems() -> None:
    problems = bad("--config-file", str(DATA / "tutorial.json"), "--mtu", "1")
    assert [p.source.rsplit("/", 1)[-1] for p in problems] == [
        "flag --mtu", "tutorial.json:2:1", "tutorial.json:2:23", "tutorial.json:3:28",
        "tutorial.json:4:30",
    ]  # fmt: skip


def test_version_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        resolve_config(["--version"], env={})
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("boxnetd version ")


def test_nothing_is_remembered_between_starts(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"mtu": 1400}')
    assert resolve_config(["--config-file", str(path)], env={}).mtu == 1400
    path.write_text("{}")
    assert resolve_config(["--config-file", str(path)], env={}).mtu == 1500


def test_errors_are_config_errors_and_render_one_block_each() -> None:
    with pytest.raises(ConfigErrors) as info:
        resolve_config(["--config-file", EMPTY, "--mtu", "1", "--bip", "x"], env={})
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, InvalidArgument) and err.status == 400
    assert render_problems(err) == render_problems(err.errors) == err.render()
    assert render_problems(err).count("\n\n") == 2
    assert err.to_json()["message"].startswith("Error: invalid boxnetd configuration (2 problems):")
    with pytest.raises(ValueError):
        ConfigErrors([])
