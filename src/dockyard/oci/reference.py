"""Repository names and tags, per the OCI distribution spec grammar.

Dockyard names are always ``namespace/repository``: exactly two path components, each
matching the spec's component grammar. Errors explain which rule was broken, because a
client only ever sees the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
COMPONENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
"""Every character a name component (a namespace, a repository) can hold."""
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255


class NameError_(ValueError):  # noqa: N801 - avoids shadowing the builtin NameError
    """A repository name or tag breaks the grammar."""


@dataclass(frozen=True, slots=True)
class RepositoryName:
    namespace: str
    repository: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.repository}"

    @classmethod
    def parse(cls, text: str) -> RepositoryName:
        if not text:
            raise NameError_("the repository name is empty")
        if len(text) > MAX_NAME_LENGTH:
            raise NameError_(f"a repository name has at most {MAX_NAME_LENGTH} characters")
        parts = text.split("/")
        if len(parts) != 2:
            raise NameError_(f"{text!r} must have the form namespace/repository (exactly one '/')")
        for kind, part in zip(("namespace", "repository"), parts, strict=True):
            check_component(part, kind)
        return cls(parts[0], parts[1])


def check_component(part: str, kind: str = "name component") -> str:
    if not part:
        raise NameError_(f"the {kind} is empty")
    if len(part) > MAX_NAME_LENGTH:
        raise NameError_(f"the {kind} has more than {MAX_NAME_LENGTH} characters")
    if not COMPONENT.fullmatch(part):
        raise NameError_(
            f"the {kind} {part[:80]!r} may contain only lowercase letters, digits and "
            "separators ('.', '_', '__', '-') between them"
        )
    return part


def check_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise NameError_(f"tag {tag[:80]!r} must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")
    return tag
