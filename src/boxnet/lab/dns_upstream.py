"""Start the lab's logging upstream DNS server (dns_server.py) in a lab namespace."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from boxnet.lab.core import Lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.netns import Netns
from boxnet.lab.proc import LabError, tail

DNS_SERVER = Path(__file__).with_name("dns_server.py")


@dataclass(frozen=True)
class Upstream:
    ns: Netns
    log: Path
    answer: str

    def queries(self) -> list[str]:
        """Every query it received so far, as `QNAME QTYPE SOURCE` lines."""
        return self.log.read_text().splitlines() if self.log.exists() else []


def dns_server(
    lab: Lab, ns: Netns, answer: str = "192.0.2.53", port: int = 53, bind: str = "0.0.0.0"
) -> Upstream:
    """Run dns_server.py in ns (UDP bind:port; "::" for both families), answering every A
    query with `answer`; the lab kills it at close."""
    stem = f"dns-{ns.role}-{port}"
    ready, log_path = lab.tmpdir / f"{stem}.ready", lab.tmpdir / f"{stem}.queries"
    out = lab.tmpdir / f"{stem}.out"
    argv = [str(venv_bin() / "python"), "-I", str(DNS_SERVER), "--answer", answer]
    argv += ["--port", str(port), "--log", str(log_path), "--ready-file", str(ready)]
    argv += ["--bind", bind]
    with out.open("ab") as sink:
        proc = ns.popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"dns server in {ns.name} did not start:\n{tail(out)}")
        time.sleep(0.02)
    return Upstream(ns, log_path, answer)
