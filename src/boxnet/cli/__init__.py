"""The `boxnet` command-line client: argparse, HTTP over the daemon's unix socket, rendering.

Layering (docs/DESIGN.md): imports no pyroute2/nftables/asyncio and nothing from core/kernel;
it only parses what users type, calls the daemon's HTTP API and renders the answers.

Modules: main (entry point, errors), client (HTTP/1.1 over AF_UNIX), attach (fd passing, pty
relay), render/template (tables, Go templates), and one module per command group: run
(run/create/exec), containers, networks, lan (pipework/hostbridge), images, system.
"""
