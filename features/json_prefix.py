"""Whether a text that is still being written can yet become valid JSON.

A pushdown automaton over RFC 8259 JSON, fed one delta at a time: it stops at the first
character after which no continuation could give a valid document (a ``True`` where JSON
says ``true``, a stray quote, text after the value ended, a raw newline inside a string).
Each character is looked at once, so watching a stream costs its length, not its square.
Python's extensions (``NaN``, ``Infinity``) are not JSON and are refused, as a strict
parser on the other side would refuse them.
"""

from __future__ import annotations

from enum import Enum, auto

_WHITESPACE = frozenset(" \t\n\r")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = frozenset('"\\/bfnrt')
_LITERALS = {"t": "true", "f": "false", "n": "null"}


class _State(Enum):
    VALUE = auto()  # a value must come (the start, after ':' or after ',' in an array)
    VALUE_OR_CLOSE = auto()  # just after '['
    KEY_OR_CLOSE = auto()  # just after '{'
    KEY = auto()  # after ',' in an object
    COLON = auto()  # after a key
    COMMA_OR_CLOSE = auto()  # after a value inside a container
    END = auto()  # the top-level value is complete
    STRING = auto()
    ESCAPE = auto()
    UNICODE = auto()
    LITERAL = auto()
    NUMBER = auto()


class _Number(Enum):
    MINUS = auto()  # "-"
    ZERO = auto()  # "0" or "-0": no more integer digits
    INTEGER = auto()  # "12"
    POINT = auto()  # "1."
    FRACTION = auto()  # "1.5"
    EXP = auto()  # "1e"
    EXP_SIGN = auto()  # "1e-"
    EXP_DIGITS = auto()  # "1e5"


_NUMBER_ENDS = frozenset({_Number.ZERO, _Number.INTEGER, _Number.FRACTION, _Number.EXP_DIGITS})


class JsonPrefix:
    """Feed a JSON text in pieces; ``error`` says why it can no longer be valid, if so.

    With ``require_object`` the document must be an object (as tool-call arguments are).
    ``complete`` is True when what was fed is a whole JSON document. After an error, further
    deltas are ignored and the first error stays.
    """

    def __init__(self, *, require_object: bool = False) -> None:
        self._require_object = require_object
        self._state = _State.VALUE
        self._stack: list[str] = []  # "{" or "[" for each open container
        self._string_is_key = False
        self._unicode_left = 0
        self._literal = ""
        self._literal_at = 0
        self._number = _Number.MINUS
        self._offset = 0
        self.error: str | None = None

    @property
    def complete(self) -> bool:
        if self.error is not None:
            return False
        if self._state is _State.END:
            return True
        return self._state is _State.NUMBER and not self._stack and self._number in _NUMBER_ENDS

    def feed(self, delta: str) -> str | None:
        """Take the next piece of text; the reason it can no longer become JSON, or None."""
        if self.error is not None:
            return self.error
        for char in delta:
            problem = self._step(char)
            if problem is not None:
                self.error = f"{problem} at character {self._offset + 1}"
                return self.error
            self._offset += 1
        return None

    def _step(self, char: str) -> str | None:
        state = self._state
        if state is _State.STRING:
            return self._in_string(char)
        if state is _State.ESCAPE:
            if char == "u":
                self._state, self._unicode_left = _State.UNICODE, 4
                return None
            if char not in _ESCAPES:
                return f"invalid escape '\\{char}'"
            self._state = _State.STRING
            return None
        if state is _State.UNICODE:
            if char not in _HEX:
                return f"invalid \\u escape ({char!r} is not hexadecimal)"
            self._unicode_left -= 1
            if self._unicode_left == 0:
                self._state = _State.STRING
            return None
        if state is _State.LITERAL:
            if char != self._literal[self._literal_at]:
                return f"expected {self._literal!r}, got {char!r}"
            self._literal_at += 1
            if self._literal_at == len(self._literal):
                self._value_done()
            return None
        if state is _State.NUMBER:
            continues = self._in_number(char)
            if isinstance(continues, str):
                return continues
            if continues:
                return None
            if self._number not in _NUMBER_ENDS:
                return f"unfinished number before {char!r}"
            self._value_done()
            return self._step(char)  # the character after a number belongs to what follows
        if char in _WHITESPACE:
            return None
        return self._structural(char)

    def _structural(self, char: str) -> str | None:
        state = self._state
        if state is _State.END:
            return f"text after the JSON value ended ({char!r})"
        if state is _State.COLON:
            if char != ":":
                return f"expected ':' after a key, got {char!r}"
            self._state = _State.VALUE
            return None
        if state is _State.COMMA_OR_CLOSE:
            top = self._stack[-1]
            if char == ",":
                self._state = _State.KEY if top == "{" else _State.VALUE
                return None
            if char == ("}" if top == "{" else "]"):
                self._close()
                return None
            closer = "'}'" if top == "{" else "']'"
            return f"expected ',' or {closer}, got {char!r}"
        if state in (_State.KEY_OR_CLOSE, _State.KEY):
            if char == '"':
                self._state, self._string_is_key = _State.STRING, True
                return None
            if char == "}" and state is _State.KEY_OR_CLOSE:
                self._close()
                return None
            return f"expected a key in double quotes, got {char!r}"
        if char == "]" and state is _State.VALUE_OR_CLOSE:
            self._close()
            return None
        return self._value_start(char)

    def _value_start(self, char: str) -> str | None:
        if self._require_object and not self._stack and char != "{":
            return f"expected a JSON object, got {char!r}"
        if char == "{":
            self._stack.append("{")
            self._state = _State.KEY_OR_CLOSE
        elif char == "[":
            self._stack.append("[")
            self._state = _State.VALUE_OR_CLOSE
        elif char == '"':
            self._state, self._string_is_key = _State.STRING, False
        elif char in _LITERALS:
            self._state, self._literal, self._literal_at = _State.LITERAL, _LITERALS[char], 1
        elif char == "-" or char in _DIGITS:
            self._state = _State.NUMBER
            self._number = (
                _Number.MINUS if char == "-" else _Number.ZERO if char == "0" else _Number.INTEGER
            )
        else:
            return f"expected a JSON value, got {char!r}"
        return None

    def _in_string(self, char: str) -> str | None:
        if char == '"':
            if self._string_is_key:
                self._state = _State.COLON
            else:
                self._value_done()
        elif char == "\\":
            self._state = _State.ESCAPE
        elif ord(char) < 0x20:
            return f"unescaped control character {char!r} in a string"
        return None

    def _in_number(self, char: str) -> bool | str:
        """True when ``char`` continues the number, a reason when it breaks it, False when
        it is not part of the number (which then ends)."""
        part = self._number
        digit = char in _DIGITS
        if part is _Number.MINUS:
            if not digit:
                return f"expected a digit after '-', got {char!r}"
            self._number = _Number.ZERO if char == "0" else _Number.INTEGER
        elif part in (_Number.ZERO, _Number.INTEGER):
            if digit and part is _Number.ZERO:
                return "a number cannot have a leading zero"
            if digit:
                return True
            if char == ".":
                self._number = _Number.POINT
            elif char in "eE":
                self._number = _Number.EXP
            else:
                return False
        elif part in (_Number.POINT, _Number.FRACTION):
            if digit:
                self._number = _Number.FRACTION
            elif part is _Number.FRACTION and char in "eE":
                self._number = _Number.EXP
            elif part is _Number.POINT:
                return f"expected a digit after '.', got {char!r}"
            else:
                return False
        elif part is _Number.EXP:
            if digit:
                self._number = _Number.EXP_DIGITS
            elif char in "+-":
                self._number = _Number.EXP_SIGN
            else:
                return f"expected an exponent, got {char!r}"
        elif part is _Number.EXP_SIGN:
            if not digit:
                return f"expected an exponent digit, got {char!r}"
            self._number = _Number.EXP_DIGITS
        elif not digit:  # EXP_DIGITS
            return False
        return True

    def _close(self) -> None:
        self._stack.pop()
        self._value_done()

    def _value_done(self) -> None:
        self._state = _State.COMMA_OR_CLOSE if self._stack else _State.END


def json_prefix_error(text: str, *, require_object: bool = False) -> str | None:
    """Why ``text`` cannot be the beginning of a valid JSON document (None if it can)."""
    return JsonPrefix(require_object=require_object).feed(text)
