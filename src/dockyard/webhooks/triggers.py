"""Which tags fire a webhook: all of them, a list, or a regular expression.

Regular expressions come from users and run on every push, so they are compiled with
RE2, whose matching time is linear in the tag's length whatever the pattern: a pattern
like ``(a+)+$`` cannot stall the delivery worker the way it stalls a backtracking
engine. The price is RE2's syntax: no backreferences and no look-around, which
:meth:`Trigger.parse` says in its refusal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, cast

from dockyard.errors import Invalid
from dockyard.oci.reference import NameError_, check_tag

TriggerType = Literal["all", "tag_list", "tag_regex"]
TRIGGER_TYPES: Final[tuple[str, ...]] = ("all", "tag_list", "tag_regex")
MAX_TAGS: Final = 10
MAX_REGEX_LENGTH: Final = 256
_REGEX_MAX_MEM: Final = 1 << 20
"""RE2's memory budget per pattern (default 8 MiB): ample for 256 characters, and it
keeps the compiled-pattern cache small."""
_FIELDS: Final[dict[str, frozenset[str]]] = {
    "all": frozenset({"type"}),
    "tag_list": frozenset({"type", "tags"}),
    "tag_regex": frozenset({"type", "regex"}),
}


class TriggerError(Invalid):
    """A webhook's trigger is malformed; the message names the field at fault."""


class _Pattern(Protocol):
    """The part of a compiled RE2 pattern used here (google-re2 is untyped)."""

    def fullmatch(self, text: str) -> object | None: ...


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> _Pattern:
    """Compile once per distinct pattern: deliveries test the same few over and over.
    RE2 is imported by the first pattern (google-re2 ships no type information: see
    mypy overrides), not by every process that loads the webhooks."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the refusal reaches the user; RE2 need not print it too
    options.max_mem = _REGEX_MAX_MEM
    return cast(_Pattern, re2.compile(pattern, options))


def _re2_detail(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        return detail.decode("utf-8", errors="replace")
    return str(detail)


@dataclass(frozen=True)
class Trigger:
    """When a webhook fires. Build one from user input with :meth:`parse`, which
    validates; the constructor trusts its arguments (the stored form was validated)."""

    type: TriggerType
    tags: tuple[str, ...] = ()
    regex: str = ""

    @classmethod
    def parse(cls, value: object) -> Trigger:
        """Validate a trigger as the API receives it (decoded JSON).

        :raises TriggerError: naming the field at fault, e.g. ``trigger.tags[2]: …``.
        """
        if not isinstance(value, dict):
            raise TriggerError('trigger: must be an object with a "type"')
        fields: dict[Any, Any] = value
        kind = fields.get("type")
        if kind is None:
            raise TriggerError('trigger.type: missing; one of "all", "tag_list", "tag_regex"')
        if not isinstance(kind, str) or kind not in _FIELDS:
            raise TriggerError(f'trigger.type: {kind!r} is not "all", "tag_list" or "tag_regex"')
        allowed = _FIELDS[kind]
        for name in fields:
            if name not in allowed:
                takes = ", ".join(sorted(allowed))
                raise TriggerError(
                    f"trigger.{name}: unknown field (a {kind} trigger takes only {takes})"
                )
        if kind == "tag_list":
            return cls("tag_list", tags=_parse_tags(fields.get("tags")))
        if kind == "tag_regex":
            return cls("tag_regex", regex=_parse_regex(fields.get("regex")))
        return cls("all")

    def to_json(self) -> dict[str, Any]:
        """The trigger as stored and as the API shows it; :meth:`parse` reads it back."""
        if self.type == "tag_list":
            return {"type": "tag_list", "tags": list(self.tags)}
        if self.type == "tag_regex":
            return {"type": "tag_regex", "regex": self.regex}
        return {"type": "all"}

    def match(self, tag: str) -> tuple[bool, str]:
        """Whether an event about ``tag`` fires the webhook, and if not, why not.

        The reason is shown in the delivery log, so a user whose webhook stayed silent
        can see which rule skipped it. ``tag`` is empty for events without one (a
        manifest pushed by digest, a repository created): only ``all`` fires for those.
        """
        if self.type == "all":
            return True, ""
        if not tag:
            return False, "the event has no tag"
        if self.type == "tag_list":
            if tag in self.tags:
                return True, ""
            listed = ", ".join(self.tags)
            return False, f"tag {tag!r} is not in the webhook's tag list ({listed})"
        if _compile(self.regex).fullmatch(tag) is not None:
            return True, ""
        return False, f"tag {tag!r} does not match the regular expression {self.regex!r}"


def _parse_tags(value: object) -> tuple[str, ...]:
    if value is None:
        raise TriggerError("trigger.tags: missing; a tag_list trigger needs a list of tags")
    if not isinstance(value, list):
        raise TriggerError("trigger.tags: must be a list of tags")
    items = cast(list[object], value)
    if not 1 <= len(items) <= MAX_TAGS:
        raise TriggerError(f"trigger.tags: must list 1 to {MAX_TAGS} tags, not {len(items)}")
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TriggerError(f"trigger.tags[{index}]: must be a string, not {item!r}")
        try:
            check_tag(item)
        except NameError_ as exc:
            raise TriggerError(f"trigger.tags[{index}]: {exc}") from exc
        if item in seen:
            raise TriggerError(f"trigger.tags[{index}]: {item!r} is listed twice")
        seen.add(item)
    return tuple(cast(list[str], items))


def _parse_regex(value: object) -> str:
    if value is None:
        raise TriggerError("trigger.regex: missing; a tag_regex trigger needs a regex")
    if not isinstance(value, str):
        raise TriggerError("trigger.regex: must be a string")
    if not 1 <= len(value) <= MAX_REGEX_LENGTH:
        raise TriggerError(
            f"trigger.regex: must be 1 to {MAX_REGEX_LENGTH} characters, not {len(value)}"
        )
    import re2

    try:
        _compile(value)
    except re2.error as exc:
        raise TriggerError(
            f"trigger.regex: {value!r} is not a pattern RE2 accepts ({_re2_detail(exc)}); "
            "RE2 has no backreferences or look-around, which keeps matching linear in time"
        ) from exc
    return value
