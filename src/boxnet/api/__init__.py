"""HTTP API: the Docker Engine API paths and JSON shapes, on a unix socket."""
