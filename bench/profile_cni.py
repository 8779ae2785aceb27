"""Where the in-daemon CNI ADD goes: cProfile around boxnetd's handling of each ADD.

    .venv/bin/python -m bench.profile_cni [--rounds 30] [--top 30]

Starts boxnetd in its own lab through a wrapper that profiles `POST /boxnet/cni/invoke` for
ADD only (api/routes_cni._invoke), runs ADD + DEL of a fresh namespace per round through the C
plugin, as a runtime does, and prints the functions by cumulative time per ADD. cProfile sees
the request's thread only: time spent waiting for another thread shows as lock acquires. How
issue 18's in-daemon ADD went from 17-28 ms to ~5 ms was found this way (docs/CHOICES.md).
"""

from __future__ import annotations

import argparse
import io
import pstats
import subprocess

from bench.cni import cni_env, timed
from boxnet.lab import Lab, basic_lab, venv_bin

WRAPPER = r"""
import cProfile, sys
from boxnet.api import routes_cni
profile, out = cProfile.Profile(), sys.argv.pop(1)
invoke = routes_cni._invoke
def profiled(req, work):
    if not req.body.startswith(b"CNI_COMMAND=ADD\0"):
        return invoke(req, work)
    profile.enable()
    try:
        return invoke(req, work)
    finally:
        profile.disable()
        profile.dump_stats(out)
routes_cni._invoke = profiled
from boxnet.daemon import main
sys.exit(main(sys.argv[1:]))
"""


def profile(rounds: int, top: int) -> str:
    with Lab("bench-profile-cni") as lab:
        stats = lab.tmpdir / "add.prof"
        exe = [str(venv_bin() / "python"), "-c", WRAPPER, str(stats)]
        d = lab.boxnetd(basic_lab(lab).host, exe=exe)
        plugins = lab.tmpdir / "plugins"
        install = [str(venv_bin() / "boxnet-cni"), "install", str(plugins)]
        subprocess.run(install, check=True, capture_output=True)
        conf = {
            "cniVersion": "1.1.0",
            "name": "profcni",
            "type": "boxnet",
            "boxnetHost": f"unix://{d.socket}",
            "ipam": {"subnet": "10.99.5.0/24"},
        }
        argv = [str(plugins / "boxnet")]
        for i in range(rounds + 1):  # the first creates the network
            ns = lab.netns(f"p{i}")
            for command in ("ADD", "DEL"):
                timed(argv, cni_env(command, ns, f"c{i}", str(plugins)), conf)
        text = io.StringIO()
        pstats.Stats(str(stats), stream=text).sort_stats("cumulative").print_stats(top)
        return f"{rounds + 1} ADDs (cumulative seconds over all of them):\n" + text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 200:
        parser.error("bounded: --rounds 1..200")
    print(profile(args.rounds, args.top))


if __name__ == "__main__":
    main()
