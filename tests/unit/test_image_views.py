"""Images as the API shows them: history rows, list filters (both encodings), inspect keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet.api.image_views import image_history, image_inspect, image_summary
from boxnet.api.routes_images import _matches, parse_filters
from boxnet.errors import InvalidArgument
from boxnet.image.store import Image, Layer


def _image(tags: list[str], labels: dict[str, str] | None = None) -> Image:
    config = {
        "created": "2026-01-02T03:04:05.123456789Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64, "sha256:" + "e" * 64]},
        "history": [
            {"created": "2026-01-01T00:00:00Z", "created_by": "ADD rootfs"},
            {"created": "2026-01-01T00:00:01Z", "created_by": "ENV A=1", "empty_layer": True},
            {"created": "2026-01-02T03:04:05Z", "created_by": "RUN make", "comment": "c"},
        ],
    }
    layers = [Layer("sha256:" + "a" * 64, "t", 100, "sha256:" + "d" * 64),
              Layer("sha256:" + "b" * 64, "t", 7, "sha256:" + "e" * 64)]  # fmt: skip
    return Image("sha256:" + "f" * 64, config, layers, 107, tags, [], Path("/x"))


def test_history_newest_first_with_layer_sizes() -> None:
    rows = image_history(_image(["docker.io/library/app:1"]))
    assert [(r["Id"][:10], r["CreatedBy"], r["Size"]) for r in rows] == [
        ("sha256:fff", "RUN make", 7),
        ("<missing>", "ENV A=1", 0),  # an empty layer takes no layer's size
        ("<missing>", "ADD rootfs", 100),
    ]
    assert rows[0]["Tags"] == ["app:1"] and rows[0]["Comment"] == "c"


def test_summary_and_inspect_shapes() -> None:
    image = _image(["203.0.113.1:5000/team/app:1"])
    summary = image_summary(image, 2)
    assert summary["RepoTags"] == ["203.0.113.1:5000/team/app:1"]
    assert summary["Created"] == 1767323045 and summary["Containers"] == 2
    inspect = image_inspect(image)
    assert inspect["RootFS"]["Layers"] == image.config["rootfs"]["diff_ids"]
    assert inspect["Config"]["Cmd"] == ["sh"] and inspect["Config"]["Entrypoint"] is None
    assert inspect["Created"] == "2026-01-02T03:04:05.123456789Z"


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ('{"reference": ["app"]}', True),
        ('{"reference": {"app:1": true}}', True),
        ('{"reference": ["other"]}', False),
        ('{"reference": ["203.0.113.1:5000/team/*"]}', False),  # the tag here is docker.io's
        ('{"dangling": ["true"]}', False),
        ('{"dangling": {"false": true}}', True),
        ('{"label": ["tier"]}', True),
        ('{"label": ["tier=web"]}', True),
        ('{"label": ["tier=db"]}', False),
    ],
)
def test_list_filters(text: str, matched: bool) -> None:
    image = _image(["docker.io/library/app:1"], {"tier": "web"})
    assert _matches(image, parse_filters(text)) is matched


def test_bad_filters_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter"):
        _matches(_image([]), parse_filters('{"until": ["1h"]}'))
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_filters("{")
