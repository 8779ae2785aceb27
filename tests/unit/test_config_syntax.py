"""daemon.json syntax mistakes: each is named with line:column, a caret and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet.config import ConfigErrors, ConfigProblem, resolve_config
from boxnet.config.jsonfile import parse_config_text, read_config_file


def syntax(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigErrors) as info:
        parse_config_text(text, "d.json")
    return info.value.errors


def one(text: str) -> ConfigProblem:
    problems = syntax(text)
    assert len(problems) == 1, [p.headline() for p in problems]
    return problems[0]


def test_single_quoted_key_and_value() -> None:
    problems = syntax("{'bip': '10.0.0.1/24'}")
    assert [p.headline() for p in problems] == [
        "d.json:1:2: JSON needs double quotes: 'bip' → \"bip\"",
        "d.json:1:9: JSON needs double quotes: '10.0.0.1/24' → \"10.0.0.1/24\"",
    ]
    assert problems[0].excerpt == "    1 | {'bip': '10.0.0.1/24'}\n      |  ^^^^^"


def test_missing_comma_between_lines_points_at_end_of_previous_line() -> None:
    problem = one('{\n  "mtu": 1400\n  "icc": false\n}')
    assert problem.headline() == "d.json:2:14: missing comma after line 2"
    assert problem.hint == "add ',' at the end of line 2: every member but the last ends with ','"
    assert problem.excerpt == '    2 |   "mtu": 1400\n      |              ^'


def test_missing_comma_on_one_line_and_in_lists() -> None:
    assert one('{"mtu": 1400 "icc": false}').headline() == (
        'd.json:1:14: missing comma before "icc"'
    )
    problem = one('{"dns": [\n "1.1.1.1"\n "8.8.8.8"\n]}')
    assert problem.headline() == "d.json:2:11: missing comma after line 2"


def test_trailing_commas_in_objects_and_lists() -> None:
    problems = syntax('{\n"dns": ["1.1.1.1",],\n"mtu": 1500,\n}')
    assert [p.headline() for p in problems] == [
        "d.json:2:18: trailing comma: JSON allows no ',' after the last item",
        "d.json:3:12: trailing comma: JSON allows no ',' after the last item",
    ]
    assert problems[1].hint == "delete the ',' on line 3"


@pytest.mark.parametrize("comment", ["// note", "# note", "/* note */"])
def test_comments(comment: str) -> None:
    problem = one(f'{{\n  {comment}\n  "mtu": 1500\n}}')
    assert problem.headline() == "d.json:2:3: comments are not allowed in JSON"
    assert problem.hint == "delete the comment (JSON has no comment syntax)"


def test_unquoted_key_and_value() -> None:
    problems = syntax("{bip: 10.0.0.1/24}")
    assert [p.message for p in problems] == [
        'JSON needs double quotes around keys: bip → "bip"',
        'JSON needs double quotes around text: 10.0.0.1/24 → "10.0.0.1/24"',
    ]


def test_python_literals() -> None:
    assert one('{"icc": False}').message == "JSON literals are lowercase: False → false"


def test_empty_file_and_comment_only_file() -> None:
    problem = one("  \n")
    assert (problem.source, problem.message) == ("d.json:1:1", "the file is empty")
    assert problem.hint == "write {} to use the defaults, or delete the file"
    assert [p.message for p in syntax("// x\n")] == [
        "comments are not allowed in JSON",
        "the file holds no JSON object",
    ]


def test_not_an_object() -> None:
    problem = one('["bip"]')
    assert problem.message == 'the configuration must be one JSON object: { "key": value, ... }'


def test_typographic_quotes_and_full_width_punctuation() -> None:
    problems = syntax("{“mtu”\uff1a1500}")
    assert [p.message for p in problems] == [
        'typographic quotes are not JSON quotes: “mtu” → "mtu"',
        "full-width '\uff1a' is not JSON punctuation: write the ASCII ':'",
    ]


def test_equals_missing_colon_and_unclosed_string() -> None:
    assert one('{"mtu" = 1500}').message == "JSON separates key and value with ':', not '='"
    assert one('{"mtu" 1500}').message == "missing ':' after the key \"mtu\""
    problem = one('{"bip": "10.0.0.1/24\n}')
    assert problem.message == 'string "10.0.0.1/24 is not closed before the end of the line'
    assert problem.hint == 'write "10.0.0.1/24"'


def test_unknown_mistake_stops_the_scan_once() -> None:
    problem = one('{"mtu": 1500} extra')
    assert (
        problem.headline()
        == "d.json:1:15: unexpected 'extra': expected nothing after the closing '}'"
    )
    problem = one('{"mtu": 1500')
    assert (
        problem.message
        == "the file ends too early: expected '}' to close the object opened on line 1"
    )


def test_json_loads_has_the_last_word() -> None:
    problem = one('{"a": "\\q"}')
    assert problem.headline() == "d.json:1:8: invalid JSON: Invalid \\escape"
    assert problem.excerpt is not None


def test_lone_surrogate_escape_is_refused_but_a_pair_is_fine() -> None:
    problem = one('{"bridge": "br\\ud800"}')
    assert problem.headline() == (
        "d.json:1:15: a \\u escape here is half of a UTF-16 pair, not a character"
    )
    assert parse_config_text('{"bridge": "\\ud83d\\ude00"}', "d.json").data == {"bridge": "😀"}


def test_duplicate_keys_are_reported_after_syntax() -> None:
    loaded = parse_config_text('{\n"mtu": 1400,\n"mtu": 1500\n}', "d.json")
    assert [p.headline() for p in loaded.problems] == [
        "d.json:3:1: mtu: key given twice, first on line 2: JSON keeps only the last one"
    ]


def test_positions_of_keys_and_list_items() -> None:
    loaded = parse_config_text('{\n "dns": [\n  "1.1.1.1",\n  "8.8.8.8"]\n}', "d.json")
    assert loaded.source("dns") == "d.json:2:2"
    assert loaded.source("dns", 1) == "d.json:4:3"
    assert loaded.source("nope") == "d.json"


def test_utf8_bom_is_ignored_and_bad_encoding_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_bytes(b'\xef\xbb\xbf{"mtu": 1400}')
    assert resolve_config(["--config-file", str(path)], env={}).mtu == 1400
    path.write_bytes(b'{\n"dns-search": ["caf\xe9"]}')
    with pytest.raises(ConfigErrors) as info:
        read_config_file(path, explicit=True)
    assert info.value.errors[0].headline() == f"{path}:2: not UTF-8 text: byte 0xe9 on line 2"


def test_syntax_problems_come_before_anything_else() -> None:
    # "final-cidr" is unknown and /36 is bad, but nothing is judged until the syntax is valid.
    problems = syntax('{"final-cidr": "10.0.0.0/36" "bip": "x"}')
    assert [p.message for p in problems] == ['missing comma before "bip"']
