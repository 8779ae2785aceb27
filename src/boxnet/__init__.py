"""boxnet: Docker-style container networking on a real Linux kernel."""

__version__ = "0.1.0"
API_VERSION = "1.43"
