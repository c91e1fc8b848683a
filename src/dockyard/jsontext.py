"""JSON text from outside, parsed with a bound on nesting.

Python's parser recurses once per array or object, so a text of 100,000 ``[`` ends in a
RecursionError (and values nested a few hundred deep break whatever walks them next).
:func:`loads` scans the nesting first, in linear time and without recursion.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects accepted (policy documents, the deepest
JSON Dockyard reads, nest five levels)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


class TooDeep(ValueError):
    """The text nests arrays and objects deeper than allowed."""

    def __init__(self, most: int) -> None:
        super().__init__(f"arrays and objects nest deeper than {most} levels")
        self.most = most


def depth_exceeds(text: str | bytes, most: int) -> bool:
    """Whether arrays and objects in the JSON ``text`` nest deeper than ``most`` (string
    contents are skipped; in an invalid text the answer may go either way, and the
    parser refuses the text next)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = 0
    for bracket in _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        if depth > most:
            return True
    return False


def loads(text: str | bytes, most: int = MAX_DEPTH) -> Any:
    """``json.loads``, refusing nesting deeper than ``most`` with :class:`TooDeep`, and a
    string escaping half a surrogate pair (``"\\ud800"``: no UTF-8 text, so no database
    stores it) with a ``ValueError``, as every other refusal of the text is."""
    if depth_exceeds(text, most):
        raise TooDeep(most)
    value = json.loads(text)
    escaped = b"\\u" in text if isinstance(text, bytes) else "\\u" in text
    if escaped:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise ValueError("a string escapes half a surrogate pair (\\ud800 to \\udfff)") from exc
    return value
