"""A forgiving tokenizer for hand-written JSON.

`json.loads` stops at the first mistake and describes it in parser terms ("Expecting property name
enclosed in double quotes"). People editing daemon.json make the same few mistakes over and
over (single or typographic quotes, comments, full-width punctuation from a Chinese input method),
so this tokenizer accepts them, records an `Issue` that says the fix, and keeps going: one run
reports every mistake it can see. `jsonlint` builds on the tokens; `json.loads` still has the
final word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    LBRACE = "{"
    RBRACE = "}"
    LBRACK = "["
    RBRACK = "]"
    COLON = ":"
    COMMA = ","
    EQUALS = "="  # `"bip" = "..."`: a common slip, reported by the parser
    STRING = "string"  # any quoted string, including badly quoted ones (already reported)
    NUMBER = "number"
    WORD = "word"  # true/false/null, or an unquoted word (reported by the parser)
    JUNK = "junk"  # a character JSON has no use for; the parser reports it and stops


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # exactly as written
    start: int  # offset of the first character
    end: int  # offset after the last character
    inner: str = ""  # for STRING: the characters between the quotes (escapes left as written)


@dataclass(frozen=True)
class Issue:
    offset: int
    message: str
    hint: str | None = None
    width: int = 1


_PUNCT = {"{": Kind.LBRACE, "}": Kind.RBRACE, "[": Kind.LBRACK, "]": Kind.RBRACK}
_PUNCT |= {":": Kind.COLON, ",": Kind.COMMA, "=": Kind.EQUALS}
# Full-width forms typed by CJK input methods look like ASCII but are not JSON.
_FULL_WIDTH = {
    "\uff0c": ",",
    "\uff1a": ":",
    "\uff5b": "{",
    "\uff5d": "}",
    "\uff3b": "[",
    "\uff3d": "]",
}
_TYPOGRAPHIC_QUOTES = "“”‘’„«»"  # noqa: RUF001 - these are the point
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c in "_.+-/"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.issues: list[Issue] = []

    def run(self) -> None:
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if c in " \t\r\n":
                i += 1
            elif text.startswith("//", i) or c == "#":
                i = self._comment(i, self._line_end(i))
            elif text.startswith("/*", i):
                close = text.find("*/", i + 2)
                i = self._comment(i, len(text) if close < 0 else close + 2)
            elif c in _PUNCT:
                self.tokens.append(Token(_PUNCT[c], c, i, i + 1))
                i += 1
            elif c in _FULL_WIDTH:
                ascii_c = _FULL_WIDTH[c]
                msg = f"full-width '{c}' is not JSON punctuation: write the ASCII '{ascii_c}'"
                self.issues.append(Issue(i, msg, "switch the input method to half-width (ASCII)"))
                self.tokens.append(Token(_PUNCT[ascii_c], c, i, i + 1))
                i += 1
            elif c in "\"'" or c in _TYPOGRAPHIC_QUOTES:
                i = self._string(i)
            elif _is_word_char(c):
                j = i
                while j < len(text) and _is_word_char(text[j]):
                    j += 1
                word = text[i:j]
                kind = Kind.NUMBER if _NUMBER.fullmatch(word) else Kind.WORD
                self.tokens.append(Token(kind, word, i, j))
                i = j
            else:
                self.tokens.append(Token(Kind.JUNK, c, i, i + 1))
                i += 1

    def _line_end(self, i: int) -> int:
        end = self.text.find("\n", i)
        return len(self.text) if end < 0 else end

    def _comment(self, start: int, end: int) -> int:
        width = self._line_end(start) - start
        hint = "delete the comment (JSON has no comment syntax)"
        self.issues.append(Issue(start, "comments are not allowed in JSON", hint, width))
        return end

    def _string(self, start: int) -> int:
        """Scan a string opened by any quote; it ends at its closing quote or at the line's end."""
        text, opener = self.text, self.text[start]
        closers = '"' if opener == '"' else "'" if opener == "'" else _TYPOGRAPHIC_QUOTES + '"'
        i, line_end = start + 1, self._line_end(start)
        while i < line_end and text[i] not in closers:
            i += 2 if text[i] == "\\" else 1
        closed = i < line_end
        end = min(i + 1, line_end) if closed else line_end
        inner = text[start + 1 : i] if closed else text[start + 1 : line_end].rstrip("\r")
        token = Token(Kind.STRING, text[start:end], start, end, inner)
        self.tokens.append(token)
        fixed = f'"{inner}"'
        if not closed:
            msg = f"string {token.text} is not closed before the end of the line"
            self.issues.append(Issue(start, msg, f"write {fixed}", end - start))
        elif opener == "'":
            msg = f"JSON needs double quotes: {token.text} → {fixed}"
            self.issues.append(Issue(start, msg, None, end - start))
        elif opener != '"' or text[i] != '"':
            msg = f"typographic quotes are not JSON quotes: {token.text} → {fixed}"
            hint = 'turn off smart quotes in your editor; JSON uses the plain double quote "'
            self.issues.append(Issue(start, msg, hint, end - start))
        return end


def tokenize(text: str) -> tuple[list[Token], list[Issue]]:
    lexer = _Lexer(text)
    lexer.run()
    return lexer.tokens, lexer.issues
