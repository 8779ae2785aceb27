"""`boxnetd`: configuration, single-instance lock, controller start-up, then serve the API."""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from boxnet.errors import BoxnetError, Conflict

if TYPE_CHECKING:
    from boxnet.config import DaemonConfig
    from boxnet.drivers import ClusterEnv

log = logging.getLogger("boxnetd")


def _lock(path: Path) -> TextIO:
    """An exclusive flock held for the daemon's life: a second daemon on the same paths fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise Conflict(
            f"another boxnetd (pid {holder}) is already running with {path.parent}",
            hint="stop it first, or give this one other --data-root, --exec-root and -H paths",
        ) from exc
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def _socket_in_use(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _cluster(config: DaemonConfig) -> ClusterEnv | None:
    """With --cluster-store: the store and this host's membership (started once the controller
    is up; an etcd that does not answer is logged and retried, it never keeps the daemon from
    serving its local networks)."""
    if not config.cluster_store or config.cluster_advertise is None:
        return None
    from boxnet.cluster import EtcdStore, TlsFiles
    from boxnet.cluster.membership import HostMembership
    from boxnet.drivers import ClusterEnv

    store = EtcdStore(config.cluster_store, TlsFiles.from_opts(config.cluster_store_opts))
    log.info("cluster store: %s, advertising %s", store.describe(), config.cluster_advertise)
    membership = HostMembership(store, config.cluster_advertise)
    return ClusterEnv(store, config.cluster_advertise, membership)


def serve(argv: list[str]) -> int:
    from boxnet.config import ConfigErrors, render_problems, resolve_config

    try:
        config = resolve_config(argv)
    except ConfigErrors as exc:
        print(render_problems(exc), file=sys.stderr)
        return 1
    if config.validate_only:
        print(f"configuration OK ({config.config_file})")
        return 0
    logging.basicConfig(
        level=logging.DEBUG if config.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pyroute2 and asyncio log every netlink message at DEBUG: under -D that multiplied the
    # daemon's time per verb (network create 2-3x) and buried boxnet's own lines.
    for noisy in ("pyroute2", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    from boxnet.kernel import fds

    fds.raise_limit()  # ~3 descriptors per container (kernel/fds.py)
    paths = config.paths
    locks = [_lock(paths.data_root / "boxnetd.lock"), _lock(paths.lock_file)]
    if _socket_in_use(paths.socket):
        raise Conflict(
            f"the socket {paths.socket} is already served by another daemon",
            hint="stop that daemon, or pass another -H unix://PATH",
        )
    plugin_socket = config.docker_plugin_socket
    if plugin_socket is not None and _socket_in_use(plugin_socket):
        raise Conflict(
            f"the Docker plugin socket {plugin_socket} is already served by another daemon",
            hint="stop that daemon, or pass another --docker-plugin-socket PATH",
        )

    from boxnet.api.routes import build_router
    from boxnet.api.server import Server
    from boxnet.core.controller import Controller

    cluster = _cluster(config)
    controller = Controller(paths, config, cluster)
    controller.start()
    server = Server(paths.socket, build_router(controller))
    ui = None
    if config.ui is not None:
        from boxnet.api import ui_server

        ui = ui_server.start(controller, config.ui)
        controller.ui_url = ui.url

    plugin = None
    if plugin_socket is not None:  # Docker's network plugin protocol
        from boxnet.api.routes_dockerplugin import build_plugin_router

        plugin = Server(plugin_socket, build_plugin_router(controller))
        threading.Thread(target=plugin.serve_forever, args=(0.5,), daemon=True).start()
        log.info("docker network plugin (driver %s) on %s", plugin_socket.stem, plugin_socket)

    membership = cluster.membership if cluster is not None else None
    if membership is not None:
        membership.start()

    def shutdown(signum: int, _frame: object) -> None:
        log.info("signal %d: shutting down (containers keep running)", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    # What start-up made (modules, pyroute2, adopted records) lives as long as the daemon: frozen
    # out of the collector's sight, a full collection no longer walks it in the middle of a
    # start (18-24 ms each, once every ~20 starts, at N=0; more with more adopted).
    gc.collect()
    gc.freeze()
    log.info("boxnetd ready on unix://%s (pid %d)", paths.socket, os.getpid())
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        if ui is not None:
            ui.shutdown()
            ui.server_close()
        if plugin is not None:
            plugin.shutdown()
            plugin.server_close()
            if plugin_socket is not None:
                plugin_socket.unlink(missing_ok=True)
        paths.socket.unlink(missing_ok=True)
        if membership is not None:
            membership.stop()
        controller.close()
        for fh in locks:
            fh.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "-D" in args or "--debug" in args
    try:
        return serve(args)
    except BoxnetError as exc:
        if debug:
            raise
        print(exc.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
