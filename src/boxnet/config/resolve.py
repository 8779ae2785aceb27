"""resolve_config: boxnetd's flags + daemon.json -> one validated DaemonConfig, or every problem.

Stages, each reported in full before the next can run:
1. the command line (usage errors end here; other flag problems wait to be shown with the file's);
2. the file's syntax (all recognisable mistakes at once, with line, column and caret);
3. everything else together: unknown keys, flag-vs-file conflicts, JSON types, each value, then the
   rules between values.
Nothing is read from earlier runs: the result depends only on argv, the file and $BOXNET_HOST.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from boxnet.config.convert import INVALID, Collector, Converter
from boxnet.config.fields import BY_KEY, DOCKER_ONLY_KEYS, FIELDS, Setting
from boxnet.config.flags import CommandLine, parse_flags
from boxnet.config.jsonfile import LoadedFile, read_config_file
from boxnet.config.model import DaemonConfig
from boxnet.config.netvalues import BadValue, parse_bool_text
from boxnet.config.problems import COMMAND_LINE, ConfigErrors
from boxnet.config.rules import Rules
from boxnet.config.textvalues import did_you_mean, parse_host
from boxnet.paths import DEFAULT_CONFIG_FILE

HOST_ENV = "BOXNET_HOST"
# Flag spellings people carry over into the file (`--dns-opt` is "dns-opts" in daemon.json).
_FLAG_NAMES = {f.flag.lstrip("-"): f.key for f in FIELDS} | {"host": "hosts"}


def resolve_config(argv: list[str], env: Mapping[str, str] | None = None) -> DaemonConfig:
    """Parse boxnetd's argv (without the program name) and daemon.json; raise ConfigErrors."""
    env = os.environ if env is None else env
    report = Collector()
    command_line = parse_flags(argv)
    report.problems += command_line.problems
    converter = Converter(report)
    # Flag values do not depend on the file: judge them now, to show them with its syntax errors.
    flag_values = {k: converter.convert(BY_KEY[k], s) for k, s in command_line.settings.items()}
    validate = _validate_flag(command_line, report)
    config_path, explicit = _config_path(command_line, report)
    try:
        loaded = read_config_file(config_path, explicit) if config_path else None
    except ConfigErrors as err:
        raise ConfigErrors([*report.problems, *err.errors]) from None
    file_settings = _file_settings(loaded, report)
    _conflicts(command_line.settings, file_settings, report)

    sources = {f.key: "default" for f in FIELDS}
    values: dict[str, object] = {}
    for key, setting in command_line.settings.items():
        sources[key] = setting.source
        if key not in file_settings and flag_values[key] is not INVALID:
            values[key] = flag_values[key]
    for key, setting in file_settings.items():
        if key not in command_line.settings:  # in both: reported as a conflict, neither is used
            sources[key] = setting.source
            value = converter.convert(BY_KEY[key], setting)
            if value is not INVALID:
                values[key] = value
    given = set(command_line.settings) | set(file_settings)  # valid or not
    _host_from_env(env, values, given, sources, report)
    Rules(values, given, sources, report).check()
    if report.problems:
        raise ConfigErrors(report.problems)

    if values.get("iptables") is False and "ip-masq" not in given:
        # Nothing would masquerade without the firewall; say so in the config rather than pretend.
        values["ip-masq"] = False
        sources["ip-masq"] = f"implied by iptables=false ({sources['iptables']})"
    sources["config-file"] = "flag --config-file" if explicit else "default"
    return DaemonConfig(
        **{BY_KEY[key].attr: value for key, value in values.items()},  # type: ignore[arg-type]
        config_file=config_path or Path(DEFAULT_CONFIG_FILE),
        validate_only=validate,
        sources=sources,
    )


def _host_from_env(
    env: Mapping[str, str],
    values: dict[str, object],
    given: set[str],
    sources: dict[str, str],
    report: Collector,
) -> None:
    """$BOXNET_HOST is the default socket when neither -H nor "hosts" names one."""
    if "hosts" in given or not env.get(HOST_ENV):
        return
    sources["hosts"] = f"env {HOST_ENV}"
    given.add("hosts")
    try:
        values["hosts"] = parse_host(env[HOST_ENV])
    except BadValue as err:
        report.add("hosts", sources["hosts"], env[HOST_ENV], err.message, err.hint)


def _config_path(command_line: CommandLine, report: Collector) -> tuple[Path | None, bool]:
    given = command_line.config_file
    if given is None:
        return Path(DEFAULT_CONFIG_FILE), False
    if not given or "\0" in given:
        report.add(None, "flag --config-file", given, "is empty", "give the path of a daemon.json")
        return None, True
    return Path(os.path.abspath(given)), True


def _validate_flag(command_line: CommandLine, report: Collector) -> bool:
    if isinstance(command_line.validate, bool):
        return command_line.validate
    try:
        return parse_bool_text(command_line.validate)
    except BadValue as err:
        report.add(None, "flag --validate", command_line.validate, err.message, err.hint)
        return True  # the run fails anyway; never start for real on a mistyped --validate


def _file_settings(loaded: LoadedFile | None, report: Collector) -> dict[str, Setting]:
    if loaded is None:
        return {}
    report.problems += loaded.problems
    settings: dict[str, Setting] = {}
    for key, value in loaded.data.items():
        source = loaded.source(key)
        if key in BY_KEY:
            locate = (lambda k: lambda *sub: loaded.source(k, *sub))(key)
            settings[key] = Setting(key, value, source, locate, True)
        elif key in DOCKER_ONLY_KEYS:
            hint = "remove it: boxnet refuses options it would silently ignore"
            report.add(key, source, None, "a Docker option that boxnet does not implement", hint)
        else:
            guess = _FLAG_NAMES.get(key) or did_you_mean(key, list(BY_KEY))
            msg = f"unknown key, did you mean '{guess}'?" if guess else "unknown key"
            hint = (
                f'rename "{key}" to "{guess}"'
                if guess
                else "known keys: " + ", ".join(sorted(BY_KEY))
            )
            report.add(key, source, None, msg, hint)
    return settings


def _conflicts(flags: dict[str, Setting], file: dict[str, Setting], report: Collector) -> None:
    """A key both on the command line and in the file is an error naming both (as in Docker)."""
    for key in flags.keys() & file.keys():
        flag, entry = flags[key], file[key]
        msg = (
            f"given both as a flag ({flag.shown()}) and in the file at {entry.source}"
            f" ({entry.shown()})"
        )
        hint = "keep one of them: boxnetd does not guess which one should win"
        report.add(key, flag.source, None, msg, hint)


__all__ = ["COMMAND_LINE", "HOST_ENV", "resolve_config"]
