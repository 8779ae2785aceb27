"""Parsers and validators for what users type (CLI flags) and what clients send (API JSON).

Pure functions, no kernel access. Every error is a `boxnet.errors.InvalidArgument` whose message
names the bad part and whose hint says the fix. Submodules are not imported here so the CLI pays
only for the parsers it uses (it must start in < 50 ms).

- `publish`: `-p/--publish`, `--expose`, Engine API `PortBindings`/`ExposedPorts`
- `names`: container, network, DNS, hostname, interface and image names; ids
- `hosts`: `--add-host`
- `dns`: `--dns`, `--dns-search`, `--dns-option`; resolv.conf and /etc/hosts rendering
- `portfmt`: `boxnet port` output
"""
