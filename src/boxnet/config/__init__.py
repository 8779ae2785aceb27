"""boxnetd's configuration: flags + daemon.json -> a validated `DaemonConfig`, or every problem.

    config = resolve_config(sys.argv[1:])      # raises ConfigErrors
    ...
    except ConfigErrors as err:
        sys.stderr.write(render_problems(err)); sys.exit(1)

With `--validate` the result has `validate_only=True`: boxnetd prints "configuration OK" and exits 0
(or the problems and 1) without touching anything. Modules, one concern each:

- `model`: DaemonConfig and Docker's defaults
- `problems`: ConfigProblem, ConfigErrors, render_problems
- `jsonlex`, `jsonlint`, `jsonfile`: daemon.json syntax problems with file:line:col and a caret
- `flags`: the command line (argparse, Docker-style booleans)
- `fields`: the table of options shared by flags and file
- `netvalues`, `textvalues`: one parser per kind of value
- `convert`: JSON types and per-value checks; `rules`: checks between values
- `resolve`: resolve_config, the order of the stages
"""

from boxnet.config.model import (
    DEFAULT_ADDRESS_POOLS,
    DEFAULT_BIP,
    DEFAULT_BRIDGE_NAME,
    DaemonConfig,
    FirewallBackend,
)
from boxnet.config.problems import ConfigErrors, ConfigProblem, render_problems
from boxnet.config.resolve import HOST_ENV, resolve_config

__all__ = [
    "DEFAULT_ADDRESS_POOLS",
    "DEFAULT_BIP",
    "DEFAULT_BRIDGE_NAME",
    "HOST_ENV",
    "ConfigErrors",
    "ConfigProblem",
    "DaemonConfig",
    "FirewallBackend",
    "render_problems",
    "resolve_config",
]
