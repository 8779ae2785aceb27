"""What a new container takes from its image's config: Docker's merge at `create`.

Entrypoint and Cmd (a request Entrypoint drops the image's Cmd), Env (the request's variables
win by name), WorkingDir, User (resolved in the container's /etc/passwd at start, as `-u`).
"""

from __future__ import annotations

from dataclasses import replace

from boxnet.errors import InvalidArgument
from boxnet.image.config import merge_command, merge_env, run_defaults
from boxnet.image.store import Image
from boxnet.model import ContainerSpec
from boxnet.parsing.body import Field

ROOT_USERS = ("", "root", "0", "0:0", "root:root")
FALLBACK_COMMAND = ("sh",)  # an image without Entrypoint/Cmd (imports): boxnet's old default


def apply_image(spec: ContainerSpec, image: Image, name: str) -> ContainerSpec:
    defaults = run_defaults(image.config)
    body = Field(spec.raw)
    spec = _with_image_ports(spec, defaults.exposed, body)
    entrypoint = None if body["Entrypoint"].absent else body["Entrypoint"].strings(True)
    if entrypoint == ("",):  # `--entrypoint ""`: the image's entrypoint reset (Docker's form)
        entrypoint = ()
    cmd = None if body["Cmd"].absent else body["Cmd"].strings(True)
    argv = merge_command(defaults, entrypoint, cmd) or FALLBACK_COMMAND
    workdir = spec.workdir or body["WorkingDir"].text(nul_free=True) or defaults.workdir
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(
            f"the working directory {workdir!r} is invalid: it needs to be an absolute path"
        )
    user = spec.user
    if not user and defaults.user not in ROOT_USERS:  # the image's USER, resolved like -u
        from boxnet.parsing.runflags import parse_user

        user = parse_user(defaults.user)
    return replace(
        spec,
        cmd=argv,
        env=merge_env(defaults.env, spec.env),
        image_id=image.id,
        workdir=workdir,
        user=user,
    )


def _with_image_ports(spec: ContainerSpec, exposed: tuple[str, ...], body: Field) -> ContainerSpec:
    """The image's ExposedPorts join the request's (for -P and inspect), as in Docker. Not for
    container:X, which shares X's ports (Docker checks only the request's there)."""
    from boxnet.core.create_request import parse_create

    requested = body["ExposedPorts"].obj()
    missing = [port for port in exposed if port not in requested]
    if not missing or spec.network_mode.startswith("container:"):
        return spec
    merged = {**spec.raw, "ExposedPorts": {**{port: {} for port in missing}, **requested}}
    try:
        return replace(parse_create(merged), raw=spec.raw)  # the request stays as received
    except InvalidArgument as e:
        raise InvalidArgument(f"image {spec.image}: ExposedPorts: {e.message}") from e
