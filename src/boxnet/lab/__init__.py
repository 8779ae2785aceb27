"""Throwaway network labs for the tests, the demo and the benchmarks.

A `Lab` is a set of named network namespaces (`bxl<pid>-<n>-<role>`) wired with veths and
bridges, plus processes started inside them (echo servers, boxnetd), all removed by `close()` or
at the end of `with Lab() as lab:`, also when the body fails, at interpreter exit, on
SIGTERM/SIGHUP (`install_signal_cleanup()`), or by `cleanup_stale_labs()` in a later run when the
process was killed outright. Nothing ever touches the namespace the caller runs in.

Standard topologies::

    basic_lab() -> BasicLab (unpacks as lab, host, outside; also .client2)

      [host] eth0 203.0.113.2/24 2001:db8:203::2/64, default via 203.0.113.1 / 2001:db8:203::1
         |
      [outside] eth0 203.0.113.1/24 2001:db8:203::1/64; HTTP + UDP echo on :80 (IPv4 and
         |      IPv6); forwarding on, both families (in outside only)
         |      eth1 198.51.100.1/24 2001:db8:198::1/64
         |
      [client2] eth0 198.51.100.2/24 2001:db8:198::2/64, default via outside's eth1

    lan_lab(hosts=2) -> LanLab(lab, switch, gateway, hosts, workstation)

      [switch] bridge sw0 (ports p1, p2, ...)
        +-- [gateway]     eth0  192.168.198.2/24
        +-- [host1]       ens33 192.168.198.142/24, default via .2
        +-- [host2]       ens33 192.168.198.143/24, default via .2   (... up to hostN)
        +-- [workstation] eth0  192.168.198.10/24

Processes are always entered with `nsenter --net=/run/netns/<name>` (network namespace only), so
boxnetd's netns bind mounts stay in the machine's mount namespace, where a restarted daemon and
the lab's cleanup can see them.
"""

from boxnet.lab.core import Lab
from boxnet.lab.daemon import Daemon, venv_bin
from boxnet.lab.echo import echo_server_argv, script_argv
from boxnet.lab.lifecycle import cleanup_stale_labs, install_signal_cleanup
from boxnet.lab.netns import Netns, Switch
from boxnet.lab.proc import LabCommandError, LabError
from boxnet.lab.topologies import BasicLab, LanLab, basic_lab, lan_lab

__all__ = [
    "BasicLab",
    "Daemon",
    "Lab",
    "LabCommandError",
    "LabError",
    "LanLab",
    "Netns",
    "Switch",
    "basic_lab",
    "cleanup_stale_labs",
    "echo_server_argv",
    "install_signal_cleanup",
    "lan_lab",
    "script_argv",
    "venv_bin",
]
