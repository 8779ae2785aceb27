"""Images end to end: import, inspect, tag, run, save, rmi, load (docker save and OCI layout
tarballs), history; and a pull from a registry in the lab (Debian's docker-registry on the
outside namespace, filled with skopeo from an OCI layout built here from the busybox binary).

Independent observers: the id is checked against the sha256 of the config file inside the
saved tarball; what a container prints shows which rootfs, Cmd, WorkingDir and Env it got.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.oci import busybox_layer, oci_layout, tar_directory
from boxnet.lab.registry import push_layout, start_registry

pytestmark = pytest.mark.e2e

BUSYBOX = Path("/bin/busybox")


@pytest.fixture
def env(lab: Lab) -> tuple[BasicLab, Daemon]:
    basic = basic_lab(lab)
    return basic, lab.boxnetd(basic.host, "--insecure-registry", "203.0.113.1:5000")


def _rootfs_tarball(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin/busybox").write_bytes(BUSYBOX.read_bytes())
    (rootfs / "bin/busybox").chmod(0o755)
    for applet in ("sh", "cat"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir()
    (rootfs / "motd").write_text("imported!\n")
    tarball = tmp_path / "mini.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(rootfs, arcname=".")
    return tarball


def _saved(path: Path) -> tuple[list[dict[str, object]], dict[str, bytes]]:
    """manifest.json and every config of a docker-save tarball."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        configs = {m["Config"]: tar.extractfile(m["Config"]).read() for m in manifest}  # type: ignore[union-attr]
    return manifest, configs


def test_import_tag_run_save_rmi_load(env: tuple[BasicLab, Daemon], tmp_path: Path) -> None:
    _basic, d = env
    image_id = d.cli("import", str(_rootfs_tarball(tmp_path)), "mini").stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = json.loads(d.cli("image", "inspect", "mini").stdout)[0]
    assert info["Id"] == image_id and info["RepoTags"] == ["mini:latest"]
    assert len(info["RootFS"]["Layers"]) == 1 and info["Os"] == "linux"
    # the same image by every name Docker accepts
    for name in ("mini:latest", "docker.io/library/mini", image_id, image_id[7:19]):
        assert json.loads(d.cli("inspect", "--type", "image", name).stdout)[0]["Id"] == image_id

    d.cli("tag", "mini", "team/mini:v1")
    assert d.cli("run", "--rm", "team/mini:v1", "cat", "/motd").stdout == "imported!\n"
    listing = d.cli("images").stdout
    assert "team/mini" in listing and image_id[7:19] in listing
    assert "Imported from" in d.cli("history", "team/mini:v1").stdout

    saved = tmp_path / "saved.tar"
    d.cli("save", "-o", str(saved), "team/mini:v1")
    manifest, configs = _saved(saved)
    assert manifest[0]["RepoTags"] == ["team/mini:v1"]
    config_bytes = configs[str(manifest[0]["Config"])]
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == image_id  # content address

    # in use: rmi refuses without -f, names the container
    d.cli("create", "--name", "user", "team/mini:v1", "cat", "/motd")
    assert d.cli("rmi", "mini").stdout == "Untagged: mini:latest\n"  # another tag is left
    busy = d.cli("rmi", "team/mini:v1", check=False)
    assert busy.returncode == 1 and "is using its referenced image" in busy.stderr
    d.cli("rm", "user")
    out = d.cli("rmi", "team/mini:v1").stdout
    assert out == f"Untagged: team/mini:v1\nDeleted: {image_id}\n"
    gone = d.cli("image", "inspect", image_id, check=False)
    assert gone.returncode == 1 and "No such image" in gone.stderr

    assert d.cli("load", "-i", str(saved)).stdout == "Loaded image: team/mini:v1\n"
    assert json.loads(d.cli("image", "inspect", "team/mini:v1").stdout)[0]["Id"] == image_id
    assert d.cli("run", "--rm", "team/mini:v1", "cat", "/motd").stdout == "imported!\n"

    # import --change sets the new image's config: here its default command and a variable
    tarball = tmp_path / "mini.tar.gz"  # made above
    d.cli("import", "-c", 'CMD ["sh", "-c", "cat /motd; echo $GREETING"]', "-c",
          "ENV GREETING=hi", str(tarball), "withcmd")  # fmt: skip
    assert d.cli("run", "--rm", "withcmd").stdout == "imported!\nhi\n"
    bad = d.cli("import", "-c", "VOLUME /data", str(tarball), "novol", check=False)
    assert bad.returncode == 1 and "VOLUME is not supported" in bad.stderr


def test_oci_layout_config_and_whiteouts(env: tuple[BasicLab, Daemon], tmp_path: Path) -> None:
    basic, d = env
    upper = {"bin/.wh.wget": b"", "etc/motd": b"from the second layer\n"}
    image_id = oci_layout(
        tmp_path / "layout",
        [busybox_layer(), upper],
        cmd=["sh", "-c", "pwd; echo $GREETING; ls /bin | grep -c wget; cat /etc/motd"],
        env=["PATH=/bin", "GREETING=hello"],
        workdir="/etc",
        exposed=["80/tcp"],
        ref_name="lab/oci:v1",
    )
    tarball = tar_directory(tmp_path / "layout", tmp_path / "oci.tar")
    assert d.cli("load", "-i", str(tarball)).stdout == "Loaded image: lab/oci:v1\n"
    # Cmd, WorkingDir and Env from the image; the whiteout removed wget of the first layer
    out = d.cli("run", "--rm", "lab/oci:v1", check=False).stdout
    assert out == "/etc\nhello\n0\nfrom the second layer\n"
    # the request's variables win by name; a request command replaces the image's Cmd
    out = d.cli("run", "--rm", "-e", "GREETING=bye", "lab/oci:v1", "sh", "-c", "echo $GREETING")
    assert out.stdout == "bye\n"
    inspect = json.loads(d.cli("image", "inspect", "lab/oci:v1").stdout)[0]
    assert inspect["Id"] == image_id and inspect["Config"]["WorkingDir"] == "/etc"
    history = d.cli("history", "-q", "--no-trunc", "lab/oci:v1").stdout.split()
    assert history == [image_id, "<missing>"]
    # the image's ExposedPorts are what -P publishes
    serve = "echo served > /tmp/index.html; exec busybox httpd -f -p 80 -h /tmp"
    d.cli("run", "-d", "-P", "--name", "web", "lab/oci:v1", "sh", "-c", serve)
    port = d.cli("port", "web", "80/tcp").stdout.split("\n")[0].rsplit(":", 1)[1]
    got = basic.outside.run(
        ["curl", "-sf", "--retry", "20", "--retry-delay", "0", "--retry-connrefused",
         f"http://203.0.113.2:{port}/"], timeout=30
    )  # fmt: skip
    assert got.stdout == "served\n"

    # docker save A B sends names=A&names=B: both images in one tarball
    from boxnet.cli.client import Client

    chunks = Client(f"unix://{d.socket}").stream(
        "GET", "/images/get?names=lab%2Foci%3Av1&names=busybox"
    )
    (tmp_path / "two.tar").write_bytes(b"".join(chunks))
    manifest, _configs = _saved(tmp_path / "two.tar")
    assert sorted(str(m["RepoTags"]) for m in manifest) == ["['busybox:latest']", "['lab/oci:v1']"]


def test_entrypoint_and_cmd_as_docker_merges_them(
    env: tuple[BasicLab, Daemon], tmp_path: Path
) -> None:
    _basic, d = env
    oci_layout(tmp_path / "l", [busybox_layer()], entrypoint=["echo", "entry"],
               cmd=["default"], ref_name="lab/entry:1")  # fmt: skip
    d.cli("load", "-i", str(tar_directory(tmp_path / "l", tmp_path / "l.tar")))
    assert d.cli("run", "--rm", "lab/entry:1").stdout == "entry default\n"
    assert d.cli("run", "--rm", "lab/entry:1", "given").stdout == "entry given\n"
    # another entrypoint drops the image's Cmd; "" resets it, the command runs alone
    assert d.cli("run", "--rm", "--entrypoint", "pwd", "lab/entry:1").stdout == "/\n"
    out = d.cli("run", "--rm", "--entrypoint", "", "lab/entry:1", "echo", "alone").stdout
    assert out == "alone\n"
    inspect = json.loads(d.cli("inspect", "--type", "container", d.cli(
        "create", "lab/entry:1").stdout.strip()).stdout)[0]  # fmt: skip
    assert inspect["Path"] == "echo" and inspect["Args"] == ["entry", "default"]


def test_pull_from_a_lab_registry_with_docker_py(
    env: tuple[BasicLab, Daemon], tmp_path: Path
) -> None:
    docker = pytest.importorskip("docker")
    basic, d = env
    registry = start_registry(basic.lab, basic.outside, "203.0.113.1")
    image_id = oci_layout(
        tmp_path / "layout",
        [busybox_layer()],
        cmd=["echo", "pulled over the lab"],
        as_index=True,  # a multi-platform index: the pull must choose this machine's arch
    )
    push_layout(
        basic.outside, tmp_path / "layout", f"{registry}/lab/busybox:v1", all_platforms=True
    )

    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    image = client.images.pull(f"{registry}/lab/busybox", tag="v1")
    assert image.id == image_id
    assert image.tags == [f"{registry}/lab/busybox:v1"]
    assert image.attrs["RepoDigests"][0].startswith(f"{registry}/lab/busybox@sha256:")
    out = client.containers.run(f"{registry}/lab/busybox:v1", remove=True)
    assert out == b"pulled over the lab\n"
    # pulling again changes nothing; the CLI says so; the built-ins are always up to date
    again = d.cli("pull", f"{registry}/lab/busybox:v1").stdout
    assert f"Image is up to date for {registry}/lab/busybox:v1" in again
    assert "Image is up to date for busybox:latest" in d.cli("pull", "busybox").stdout

    with pytest.raises(docker.errors.ImageNotFound, match="repository does not exist"):
        client.images.pull(f"{registry}/lab/nosuch", tag="v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nosuch:1", "true")
    with pytest.raises(docker.errors.APIError) as err:  # not a 404: clients would go pulling
        client.containers.create("busybox", "true", network="nosuchnet")
    assert err.value.status_code == 400 and "network nosuchnet not found" in str(err.value)

    assert client.images.get(image_id[7:19]).id == image_id
    names = {t for i in client.images.list() for t in i.tags}
    assert {"busybox:latest", "host:latest", f"{registry}/lab/busybox:v1"} <= names
    assert [i.id for i in client.images.list(name=f"{registry}/lab/*")] == [image_id]
    saved = b"".join(client.images.get(f"{registry}/lab/busybox:v1").save())
    client.images.remove(f"{registry}/lab/busybox:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image_id)
    loaded = client.images.load(saved)
    assert [i.id for i in loaded] == [image_id]

    # docker import through the API: the body is the root file system
    status = client.api.import_image_from_data(
        _rootfs_tarball(tmp_path).read_bytes(), repository="imported", tag="v2"
    )
    imported_id = json.loads(status.strip().splitlines()[-1])["status"]
    assert client.images.get("imported:v2").id == imported_id
    assert client.containers.run("imported:v2", ["cat", "/motd"], remove=True) == b"imported!\n"
    assert [i.id for i in client.images.list(filters={"dangling": True})] == []


def test_pull_needs_the_registry_named_insecure(lab: Lab, tmp_path: Path) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)  # no --insecure-registry: HTTPS, which this registry lacks
    registry = start_registry(lab, basic.outside, "203.0.113.1")
    oci_layout(tmp_path / "layout", [busybox_layer()], cmd=["true"])
    push_layout(basic.outside, tmp_path / "layout", f"{registry}/lab/bb:1")
    out = d.cli("pull", f"{registry}/lab/bb:1", check=False)
    assert out.returncode == 1
    assert "insecure-registries" in out.stderr and "Traceback" not in out.stderr
    assert "bb" not in d.cli("images").stdout


def test_load_an_image_larger_than_the_api_body_limit(
    env: tuple[BasicLab, Daemon], tmp_path: Path
) -> None:
    """Image tarballs go to a file as they arrive: past the 64 MiB the API reads into memory."""
    import io

    from boxnet.lab.oci import layer_tar

    big = 70 << 20
    files = busybox_layer()
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        inner = tarfile.open(fileobj=io.BytesIO(layer_tar(files)))
        for member in inner:
            tar.addfile(member, inner.extractfile(member) if member.isreg() else None)
        info = tarfile.TarInfo("big")
        info.size = big
        with open("/dev/zero", "rb") as zeros:
            tar.addfile(info, zeros)
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh", "-c", "wc -c < /big"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()  # fmt: skip
    saved = tmp_path / "big.tar"
    with tarfile.open(saved, "w") as tar:
        tar.add(layer, arcname="layer/layer.tar")
        for name, data in (("config.json", config), ("manifest.json", json.dumps(
                [{"Config": "config.json", "RepoTags": ["big:1"], "Layers": ["layer/layer.tar"]}]
        ).encode())):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert saved.stat().st_size > 64 << 20
    _basic, d = env
    assert d.cli("load", "-i", str(saved)).stdout == "Loaded image: big:1\n"
    assert d.cli("run", "--rm", "big:1").stdout.strip() == str(big)
