"""The CNI spec's side of boxnet-cni, pure: the environment and the network configuration in,
boxnetd request bodies out; boxnetd's answers in, the spec's results and error objects out.

Spec: https://github.com/containernetworking/cni/blob/main/SPEC.md (1.1.0), read with the
conventions document for the `portMappings`, `aliases` and `ips` capabilities. Configurations of
0.3.0 to 1.1.0 are accepted; a result has the configuration's version and that version's shape
(0.3.x/0.4.0 `ips` entries carry "version"). Standard library only (see plugin.py).
"""

from __future__ import annotations

import json
import re  # (json imports it anyway)

TYPE_CHECKING = False  # typing costs the plugin's start; mypy reads the block
if TYPE_CHECKING:
    from typing import Any

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
VERBS = ("ADD", "DEL", "CHECK", "STATUS", "VERSION", "GC")

# The spec's well-known error codes (SPEC.md, "Error"); 100+ are the plugin's own.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
BOXNET_FAILED = 100  # boxnetd refused or failed: its message is the error's

# CNI_CONTAINERID: "alphanumeric characters, hyphens, underscores and periods" (SPEC.md).
CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
IFNAME_MAX = 15


class CniError(Exception):
    """A spec error object: printed on stdout, exit status non-zero."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class Env:
    """The CNI_* variables (a plain slotted class: dataclasses cost this process's start)."""

    __slots__ = ("args", "command", "container_id", "ifname", "netns", "path")

    def __init__(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: dict[str, str] | None = None,
        path: tuple[str, ...] = (),
    ) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = args or {}
        self.path = path


def _check_ifname(name: str) -> None:
    if not name or len(name.encode()) > IFNAME_MAX or name in (".", ".."):
        raise CniError(INVALID_ENV, f"invalid CNI_IFNAME {name!r}", "1-15 bytes, not . or ..")
    if any(c in name for c in "/:%") or any(c.isspace() for c in name):
        raise CniError(INVALID_ENV, f"invalid CNI_IFNAME {name!r}", "no '/', ':', '%' or spaces")


def parse_args(text: str) -> dict[str, str]:
    """CNI_ARGS: "K1=V1;K2=V2"."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENV, f"invalid CNI_ARGS entry {part!r}", "expected KEY=VALUE")
        out[key] = value
    return out


def parse_env(environ: dict[str, str]) -> Env:
    """The spec's environment variables, checked for the verb that needs them (code 4)."""
    command = environ.get("CNI_COMMAND", "")
    if command not in VERBS:
        raise CniError(
            INVALID_ENV,
            f"invalid CNI_COMMAND {command!r}" if command else "CNI_COMMAND is not set",
            "one of " + ", ".join(VERBS),
        )
    if command in ("VERSION", "STATUS", "GC"):
        return Env(command, path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p))
    container_id = environ.get("CNI_CONTAINERID", "")
    if not container_id:
        raise CniError(INVALID_ENV, "CNI_CONTAINERID is not set")
    if not CONTAINER_ID.match(container_id):
        raise CniError(
            INVALID_ENV,
            f"invalid CNI_CONTAINERID {container_id!r}",
            "alphanumeric characters, hyphens, underscores and periods",
        )
    netns = environ.get("CNI_NETNS", "")
    if command in ("ADD", "CHECK") and not netns:
        raise CniError(INVALID_ENV, f"CNI_NETNS is not set (required for {command})")
    ifname = environ.get("CNI_IFNAME", "")
    if not ifname:
        raise CniError(INVALID_ENV, "CNI_IFNAME is not set")
    _check_ifname(ifname)
    path = environ.get("CNI_PATH", "")
    if not path:
        raise CniError(INVALID_ENV, "CNI_PATH is not set")
    args = parse_args(environ.get("CNI_ARGS", ""))
    return Env(command, container_id, netns, ifname, args, tuple(p for p in path.split(":") if p))


def decode_config(raw: bytes) -> dict[str, Any]:
    """stdin as a JSON object (code 6), with the keys every configuration has (code 7) and a
    version this plugin speaks (code 1)."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CniError(
            DECODE_FAILURE, "cannot decode the network configuration", str(exc)
        ) from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "the network configuration is not a JSON object")
    version = config.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise CniError(INVALID_CONFIG, "the network configuration has no cniVersion")
    check_version(version)
    for key in ("name", "type"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise CniError(INVALID_CONFIG, f"the network configuration has no {key}")
    return config


def check_version(version: str) -> None:
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"incompatible CNI version {version}",
            "supported: " + ", ".join(SUPPORTED_VERSIONS),
        )


def requires(version: str, minimum: str, verb: str) -> None:
    if _version_tuple(version) < _version_tuple(minimum):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"{verb} needs cniVersion {minimum} or later, the configuration has {version}",
        )


def version_info(raw: bytes) -> dict[str, Any]:
    """VERSION's answer; stdin may carry {"cniVersion": ...} (else the latest)."""
    version = LATEST
    if raw.strip():
        try:
            given = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CniError(DECODE_FAILURE, "cannot decode stdin", str(exc)) from None
        if isinstance(given, dict) and isinstance(given.get("cniVersion"), str):
            version = given["cniVersion"]
            check_version(version)
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


# -- configuration -> boxnetd bodies -------------------------------------------------------------
def network_name(config: dict[str, Any]) -> str:
    """The boxnet network: "network" in the configuration, else the configuration's name."""
    name = config.get("network", config["name"])
    if not isinstance(name, str) or not name:
        raise CniError(INVALID_CONFIG, "network must be a non-empty string")
    return name


def _ipam(config: dict[str, Any]) -> tuple[str, str]:
    """(subnet, gateway) from ipam: boxnet's own keys, or host-local's first range (read, not
    delegated: boxnet allocates the address itself, so boxnet's containers and these share it)."""
    ipam = config.get("ipam") or {}
    if not isinstance(ipam, dict):
        raise CniError(INVALID_CONFIG, "ipam must be an object")
    kind = ipam.get("type", "boxnet")
    if kind not in ("boxnet", "host-local"):
        raise CniError(
            INVALID_CONFIG,
            f"ipam type {kind!r} is not supported",
            "boxnet allocates addresses itself: leave ipam.type out (or boxnet)",
        )
    subnet, gateway = ipam.get("subnet", ""), ipam.get("gateway", "")
    ranges = ipam.get("ranges")
    if not subnet and isinstance(ranges, list) and ranges and isinstance(ranges[0], list):
        first = ranges[0][0] if ranges[0] else {}
        if isinstance(first, dict):
            subnet, gateway = first.get("subnet", ""), first.get("gateway", "")
    if not isinstance(subnet, str) or not isinstance(gateway, str):
        raise CniError(INVALID_CONFIG, "ipam subnet and gateway must be strings")
    return subnet, gateway


def _runtime(config: dict[str, Any]) -> dict[str, Any]:
    runtime = config.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise CniError(INVALID_CONFIG, "runtimeConfig must be an object")
    return runtime


def _aliases(config: dict[str, Any], network: str) -> list[str]:
    """The `aliases` capability: {network name: [names]} (either the CNI name or boxnet's)."""
    given = _runtime(config).get("aliases") or {}
    if not isinstance(given, dict):
        raise CniError(INVALID_CONFIG, "runtimeConfig.aliases must be an object")
    out: list[str] = []
    for key in (config["name"], network):
        names = given.get(key) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CniError(INVALID_CONFIG, f"runtimeConfig.aliases.{key} must be a list of names")
        out += [n for n in names if n not in out]
    return out


def _static_ip(config: dict[str, Any], env: Env) -> str:
    """CNI_ARGS IP=, else the `ips` capability's first IPv4 address."""
    if env.args.get("IP"):
        return env.args["IP"].split("/")[0]
    for ip in _runtime(config).get("ips") or []:
        if isinstance(ip, str) and "." in ip:
            return ip.split("/")[0]
    return ""


def attach_body(config: dict[str, Any], env: Env) -> dict[str, Any]:
    network = network_name(config)
    subnet, gateway = _ipam(config)
    ports = _runtime(config).get("portMappings") or []
    if not isinstance(ports, list):
        raise CniError(INVALID_CONFIG, "runtimeConfig.portMappings must be a list")
    embedded_dns = config.get("embeddedDNS", True)
    if not isinstance(embedded_dns, bool):
        raise CniError(INVALID_CONFIG, "embeddedDNS must be true or false")
    return {
        **identity(config, env),
        "Netns": env.netns,
        "Subnet": subnet,
        "Gateway": gateway,
        "Name": env.args.get("K8S_POD_NAME", ""),
        "Aliases": _aliases(config, network),
        "PortMappings": ports,
        "IP": _static_ip(config, env),
        "NoDNS": not embedded_dns,
    }


def identity(config: dict[str, Any], env: Env) -> dict[str, str]:
    """What names one attachment: DEL and CHECK send only this."""
    return {"ContainerID": env.container_id, "IfName": env.ifname, "Network": network_name(config)}


def gc_body(config: dict[str, Any]) -> dict[str, Any]:
    valid = config.get("cni.dev/valid-attachments") or []
    if not isinstance(valid, list):
        raise CniError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    keep = []
    for item in valid:
        if not isinstance(item, dict) or not isinstance(item.get("containerID"), str):
            raise CniError(INVALID_CONFIG, "a valid attachment needs containerID and ifname")
        keep.append({"ContainerID": item["containerID"], "IfName": str(item.get("ifname", ""))})
    return {"Network": network_name(config), "Valid": keep}


# -- boxnetd's answers -> results ----------------------------------------------------------------
def result(version: str, answer: dict[str, Any]) -> dict[str, Any]:
    """ADD's result in the configuration's version: interfaces (the host end, then the one in
    the sandbox), ips pointing at the sandbox's by index, routes, dns."""
    interfaces: list[dict[str, str]] = []
    host = answer.get("HostInterface")
    if host:
        interfaces.append({"name": host["Name"], "mac": host["Mac"]})
    inside = answer["Interface"]
    interfaces.append({"name": inside["Name"], "mac": inside["Mac"], "sandbox": inside["Sandbox"]})
    index = len(interfaces) - 1
    old = _version_tuple(version) < (1, 0, 0)
    ips = []
    for ip in answer["IPs"]:
        entry: dict[str, Any] = {"address": ip["Address"], "interface": index}
        if old:
            entry["version"] = "6" if ":" in ip["Address"] else "4"
        if ip.get("Gateway"):
            entry["gateway"] = ip["Gateway"]
        ips.append(entry)
    dns: dict[str, list[str]] = {}
    if answer["DNS"]["Nameservers"]:
        dns["nameservers"] = list(answer["DNS"]["Nameservers"])
    if answer["DNS"]["Search"]:
        dns["search"] = list(answer["DNS"]["Search"])
    return {
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": ips,
        "routes": [{"dst": r["Dst"], "gw": r["Gw"]} for r in answer["Routes"]],
        "dns": dns,
    }


def check_prev_result(config: dict[str, Any], answer: dict[str, Any]) -> list[str]:
    """CHECK: what the runtime was told at ADD (prevResult) against what boxnetd has now."""
    prev = config.get("prevResult")
    if not isinstance(prev, dict):
        return []
    have = {ip["Address"] for ip in answer["IPs"]}
    problems = []
    for ip in prev.get("ips") or []:
        if isinstance(ip, dict) and ip.get("address") not in have:
            problems.append(f"address {ip.get('address')} of prevResult is not attached")
    return problems


def error_from_daemon(status: int, body: bytes) -> CniError:
    """boxnetd's error answer as a spec error: its message, and its hint as details."""
    try:
        doc = json.loads(body.decode("utf-8"))
        message, hint = str(doc.get("message", "")), str(doc.get("hint", ""))
    except (UnicodeDecodeError, ValueError, AttributeError):
        message, hint = body.decode("utf-8", "replace").strip(), ""
    code = {400: INVALID_CONFIG, 404: UNKNOWN_CONTAINER, 503: TRY_AGAIN_LATER}.get(
        status, BOXNET_FAILED
    )
    return CniError(code, f"boxnetd: {message or f'HTTP {status}'}", hint)
