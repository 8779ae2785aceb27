"""Does `make install` provide every program the suite, the demo and the benchmarks run?

A program installed by hand on a developer's machine makes the tests pass there and fail on a
fresh one (it happened with `nslookup`). Two checks, both run by `make test`:

- static (`--scan DIR ...`): programs named in the sources, as `tool("x")` or as the first
  element of an argv literal passed to run/popen/Popen/check_output/...; each must be installed
  here and come from an allowed package.
- dynamic (`-- CMD ...`): runs CMD (the test suite) while `ExecWatch` records every program the
  kernel executes on the root file system; each one that a Debian package owns must be an
  allowed package. This sees what the sources hide: argv built at run time, programs run by
  boxnetd or inside `host`-image containers.

Allowed: the Makefile's DEB_PACKAGES and everything they depend on (installed), plus the
packages every Debian system has (Essential: yes, or Priority: required). Files that no package
owns outside /usr, /bin, /sbin, /lib, /opt (the venv, labs' temp dirs, image roots) are the
project's own and not checked; under those, a file no package owns was installed by hand.

Usage: python -m boxnet.lab.programs [--makefile Makefile] [--scan DIR ...] [-- CMD ...]
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/opt/")
STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUNNERS = {"run", "popen", "Popen", "check_output", "check_call", "call", "argv", "sh"}
PROGRAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
# For programs that are not installed at all (so dpkg cannot say): where Debian 12 has them.
HINTS = {
    "nslookup": "bind9-dnsutils",
    "dig": "bind9-dnsutils",
    "host": "bind9-host",
    "docker": "docker.io",
    "dockerd": "docker.io",
    "docker-compose": "docker-compose",
    "podman": "podman",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "chromium": "chromium",
    "skopeo": "skopeo",
    "tcpdump": "tcpdump",
    "ethtool": "ethtool",
    "conntrack": "conntrack",
    "jq": "jq",
    "socat": "socat",
    "nc": "netcat-openbsd",
    "iperf3": "iperf3",
    "ping": "iputils-ping",
    "curl": "curl",
}


@dataclass(frozen=True)
class Use:
    """A program the project runs, and where that was seen (file:line, or a command line)."""

    program: str
    where: str


# --- what Debian says ------------------------------------------------------------------------


def makefile_packages(makefile: Path) -> set[str]:
    """The DEB_PACKAGES of a Makefile (continuation lines included)."""
    text = makefile.read_text().replace("\\\n", " ")
    match = re.search(r"^DEB_PACKAGES\s*:?=(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _installed() -> dict[str, tuple[bool, list[list[str]]]]:
    """package -> (on every Debian system, its dependencies as lists of alternatives)."""
    fmt = "${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Status}\n"
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, tuple[bool, list[list[str]]]] = {}
    for line in out.splitlines():
        name, essential, priority, depends, status = line.split("\t")
        if not status.endswith(" installed"):
            continue
        alternatives = [
            [alt.split()[0].split(":")[0] for alt in group.split("|") if alt.strip()]
            for group in depends.split(",")
            if group.strip()
        ]
        found[name] = (essential == "yes" or priority == "required", alternatives)
    return found


def allowed_packages(wanted: Iterable[str]) -> set[str]:
    """The wanted packages, everything they depend on (as installed), and the base system."""
    installed = _installed()
    allowed = {name for name, (base, _) in installed.items() if base}
    todo = [p for p in wanted if p in installed]
    while todo:
        name = todo.pop()
        if name in allowed and name not in wanted:
            continue
        allowed.add(name)
        for group in installed[name][1]:
            todo.extend(p for p in group if p in installed and p not in allowed)
    return allowed | set(wanted)


def owners(paths: Iterable[str]) -> dict[str, str]:
    """path -> the package that ships it; paths no package ships are left out.

    dpkg knows files by the name the package ships (/sbin/ip), while the kernel reports the
    merged-/usr name (/usr/sbin/ip): both are asked.
    """
    variants: dict[str, str] = {}
    for path in paths:
        for name in {path, os.path.realpath(path), re.sub(r"^/usr(/s?bin|/lib)/", r"\1/", path)}:
            variants.setdefault(name, path)
    if not variants:
        return {}
    res = subprocess.run(
        ["dpkg-query", "-S", *variants], capture_output=True, text=True, check=False
    )
    found: dict[str, str] = {}
    for line in res.stdout.splitlines():
        packages, _, name = line.partition(": ")
        if name in variants and not packages.startswith("diversion by"):
            found.setdefault(variants[name], packages.split(",")[0].split(":")[0].strip())
    return found


# --- what the project runs --------------------------------------------------------------------


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _literal_program(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
        return text if PROGRAM_NAME.fullmatch(text) and not text.startswith("-") else None
    return None


def programs_in_source(source: str, filename: str) -> Iterator[Use]:
    """Programs a Python source runs by name: tool("x"), and run(["x", ...])-shaped calls."""
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name, first = _call_name(node), node.args[0]
        program = None
        if name == "tool":
            program = _literal_program(first)
        elif name in RUNNERS and isinstance(first, ast.List | ast.Tuple) and first.elts:
            program = _literal_program(first.elts[0])
        if program:
            yield Use(program, f"{filename}:{node.lineno}")


def scan(dirs: Iterable[Path]) -> list[Use]:
    uses: list[Use] = []
    for top in dirs:
        for path in sorted(top.rglob("*.py")):
            uses.extend(programs_in_source(path.read_text(), str(path)))
    return uses


# --- the verdicts -----------------------------------------------------------------------------


def check_static(uses: Iterable[Use], allowed: set[str]) -> list[str]:
    """One message per program named in the sources that `make install` does not provide."""
    problems: dict[str, str] = {}
    resolved: dict[str, Use] = {}
    seen: set[str] = set()
    for use in uses:
        if use.program in seen:
            continue
        seen.add(use.program)
        path = shutil.which(use.program, path=STD_PATH)
        if path is None:
            hint = HINTS.get(use.program)
            package = hint or "its Debian package"
            fix = f"add {package} to DEB_PACKAGES"
            problems[use.program] = (
                f"{use.program} (run at {use.where}) is not installed on this machine: {fix} in "
                "the Makefile, or stop running it"
            )
        else:
            resolved[path] = use
    owned = owners(resolved)
    for path, use in resolved.items():
        verdict = _verdict(path, owned.get(path), allowed, f"run at {use.where}")
        if verdict:
            problems[use.program] = verdict
    return sorted(problems.values())


def check_executed(executed: dict[str, str], allowed: set[str]) -> list[str]:
    """One message per executed system file (path -> a command line) not provided."""
    system = {p: c for p, c in executed.items() if p.startswith(SYSTEM_PREFIXES)}
    owned = owners(system)
    problems = []
    for path, cmdline in sorted(system.items()):
        context = f"run as: {cmdline[:120]}" if cmdline else "a short-lived process"
        verdict = _verdict(path, owned.get(path), allowed, context)
        if verdict:
            problems.append(verdict)
    return problems


def _verdict(path: str, package: str | None, allowed: set[str], context: str) -> str | None:
    program = os.path.basename(path)
    if package is None:
        return (
            f"{program} ({path}, {context}) belongs to no Debian package: it was installed by "
            "hand; install it from the Makefile instead"
        )
    if package not in allowed:
        return (
            f"{program} ({path}, {context}) comes from the package {package}, which `make "
            f"install` does not install: add {package} to DEB_PACKAGES in the Makefile"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, command = args[:at], args[at + 1 :]
    parser = argparse.ArgumentParser(prog="python -m boxnet.lab.programs", description=__doc__)
    parser.add_argument("--makefile", type=Path, default=Path("Makefile"))
    parser.add_argument("--scan", type=Path, nargs="*", default=[])
    opts = parser.parse_args(args)
    allowed = allowed_packages(makefile_packages(opts.makefile))
    problems = check_static(scan(opts.scan), allowed)
    code = 0
    if command:
        code, executed = _run_watched(command)
        problems += check_executed(executed, allowed)
    if problems:
        print(f"\nprograms check: {len(problems)} program(s) not provided by `make install`:")
        for text in problems:
            print(f"  - {text}")
        return code or 1
    return code


def _run_watched(command: list[str]) -> tuple[int, dict[str, str]]:
    from boxnet.lab.execwatch import ExecWatch, available

    why = available()
    if why is not None:
        print(f"programs check: executed programs not watched ({why})", file=sys.stderr)
        return subprocess.run(command, check=False).returncode, {}
    watch = ExecWatch().start()
    try:
        with subprocess.Popen(command, env=watch.environ()) as proc:
            watch.root_pids.add(proc.pid)
            code = proc.wait()
    finally:
        seen = watch.stop()
    if watch.overflowed:
        print("programs check: the kernel dropped exec events (queue overflow)", file=sys.stderr)
    return code, {path: record.cmdline for path, record in seen.items()}


if __name__ == "__main__":
    sys.exit(main())
