"""One string argument of a tool call, decoded while the model streams the call's JSON.

The code interpreter's record shows the code as `input`, streamed as the model writes it,
as the hosted service streams it; the model writes it as the JSON arguments of a function
(`{"code": "import ..."}`), which arrive in arbitrary pieces. Each piece is read once, so a
long call costs time in proportion to its length. A field nested deeper than the top level
is not looked for; escapes are decoded as JSON defines them.
"""

from __future__ import annotations

import json

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


class FieldStream:
    def __init__(self, name: str) -> None:
        self.name = name
        self._state = "scan"  # scan -> value -> done
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._key: list[str] = []
        self._last_key: str | None = None
        self._after_colon = False
        self._unicode: str | None = None
        self._high: int | None = None

    def feed(self, piece: str) -> str:
        """The field's text that this piece of the arguments adds."""
        out: list[str] = []
        for char in piece:
            if self._state == "done":
                break
            if self._state == "value":
                self._value_char(char, out)
            else:
                self._scan_char(char)
        return "".join(out)

    def _value_char(self, char: str, out: list[str]) -> None:
        if self._unicode is not None:
            self._unicode += char
            if len(self._unicode) == 4:
                code = int(self._unicode, 16) if _is_hex(self._unicode) else 0xFFFD
                self._unicode = None
                if 0xD800 <= code < 0xDC00:
                    self._high = code
                    return
                if self._high is not None and 0xDC00 <= code < 0xE000:
                    code = 0x10000 + ((self._high - 0xD800) << 10) + (code - 0xDC00)
                self._high = None
                out.append(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")
            return
        if self._escape:
            self._escape = False
            if char == "u":
                self._unicode = ""
            else:
                out.append(_ESCAPES.get(char, char))
        elif char == "\\":
            self._escape = True
        elif char == '"':
            self._state = "done"
        else:
            out.append(char)

    def _scan_char(self, char: str) -> None:
        if self._in_string:
            if self._escape:
                self._escape = False
                self._key.append(char)
            elif char == "\\":
                self._escape = True
            elif char == '"':
                self._in_string = False
                if self._depth == 1 and not self._after_colon:
                    self._last_key = "".join(self._key)
            else:
                self._key.append(char)
            return
        if char == '"':
            if self._depth == 1 and self._after_colon and self._last_key == self.name:
                self._state = "value"
                return
            self._in_string = True
            self._key = []
        elif char in "{[":
            self._depth += 1
        elif char in "}]":
            self._depth -= 1
        elif char == ":" and self._depth == 1:
            self._after_colon = True
        elif char == "," and self._depth == 1:
            self._after_colon = False
            self._last_key = None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def field_of(arguments: str, name: str) -> str | None:
    """The field's whole value, from arguments written in full (None when there is none)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return None
    value = parsed.get(name) if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None
