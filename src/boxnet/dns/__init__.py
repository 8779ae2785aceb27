"""boxnet's embedded DNS resolver: answers container names inside each container's namespace on
127.0.0.11:53 and forwards the rest to the container's upstream servers (docs/CHOICES.md, "DNS").

The package knows nothing of records or the store: core/dnshook.py feeds it a NameTable and
tells it which containers to serve.
"""

from boxnet.dns.server import Resolver
from boxnet.dns.table import NameEntry, NameTable

__all__ = ["NameEntry", "NameTable", "Resolver"]
