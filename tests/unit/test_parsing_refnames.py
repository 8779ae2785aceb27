"""parsing/refnames.py: the checks without `re` accept exactly what the grammar accepts."""

from __future__ import annotations

import itertools
import re

import pytest

from boxnet.errors import InvalidArgument
from boxnet.parsing import refnames

IMAGES = [
    "busybox", "busybox:latest", "busybox:1.36", "library/busybox", "a/b/c:v1", "a:_x", "a:X.y-z",
    "a", "0", "a" * 255, "a:" + "t" * 128, "a:" + "t" * 129, "Busybox", "busybox:", ":tag",
    "a//b", "/a", "a/", "a:.x", "a:-x", "a b", "a:t@sha256:" + "0" * 64, "registry:5000/team/app",
    "reg.example/x", "a.b", "a__b", "a--b", "a_b:é", "a:t:t", "ÿ", "a\n", "busybox@x",
]  # fmt: skip
CONTAINERS = [
    "web",
    "w",
    "/web",
    "web-1",
    "a_.-",
    "-web",
    ".web",
    "we b",
    "wéb",
    "1",
    "11",
    "",
    "/",
]


@pytest.mark.parametrize("name", IMAGES)
def test_the_plain_subset_is_inside_the_grammar(name: str) -> None:
    if refnames._plainly_valid_image(name):
        assert refnames._matches_grammar(name)


def test_the_plain_subset_covers_the_usual_names() -> None:
    for name in ("busybox", "busybox:1.36", "library/busybox:latest", "team/app:v1_2"):
        assert refnames._plainly_valid_image(name)


@pytest.mark.parametrize("name", IMAGES)
def test_image_names_accepted_as_by_the_grammar_alone(name: str) -> None:
    expected = bool(refnames._matches_grammar(name)) and len(name.partition("@")[0]) <= 255
    try:
        refnames.validate_image_name(name)
        accepted = True
    except InvalidArgument:
        accepted = False
    assert accepted == expected


def test_container_names_follow_dockers_pattern() -> None:
    pattern = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", re.ASCII)
    alphabet = ["a", "Z", "0", "_", ".", "-", "/", "é", " "]
    names = CONTAINERS + [
        "".join(p) for n in (1, 2, 3) for p in itertools.product(alphabet, repeat=n)
    ]
    for name in names:
        try:
            refnames.validate_container_name(name)
            accepted = True
        except InvalidArgument:
            accepted = False
        assert accepted == bool(pattern.fullmatch(name)), name
