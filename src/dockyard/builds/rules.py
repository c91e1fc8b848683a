"""Build rules: which pushed refs build, from which Dockerfile, into which image tags.

A rule's ``ref`` is a branch or tag name, or a regular expression with named groups
matched against the whole name (``release-(?<version>.*)``, as Alibaba Cloud ACR's
Enterprise Edition writes them; ``(?P<version>…)`` works too). Patterns come from users
and run on every push, so they compile with RE2, whose matching time is linear in the
name whatever the pattern: a pattern such as ``(a+)+$`` cannot stall a worker.

A pattern made only of the characters branch names usually hold (letters, digits,
``.``, ``_``, ``/``, ``-``) is a plain name, compared exactly: ``v1.0`` matches ``v1.0``
only, not ``v1x0``. Anything else is a regular expression, and a ref equal to the
pattern text matches as well, so a branch really named ``feature+x`` still builds.

Image tag templates (one to three per rule) fill in ``${name}`` (a named group),
``${branch}``, ``${tag}``, ``${commit}``, ``${commit:7}`` (the first 7 hex digits),
``${build_time}`` and ``${build_time:%Y%m%d%H%M}``. Every result must be a valid OCI tag;
otherwise the build fails with a message naming the template.

Pure: no I/O except :func:`locate`, which looks into a checked-out commit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final, Protocol, TypeVar

from dockyard.oci.reference import NameError_, check_tag

RULE_TYPES: Final = ("branch", "tag")
MAX_PATTERN_LENGTH: Final = 255
MAX_TEMPLATES: Final = 3
MAX_TEMPLATE_LENGTH: Final = 255
MAX_BUILD_ARGS: Final = 20
MAX_BUILD_ARG_VALUE: Final = 4096
MAX_PATH_LENGTH: Final = 255
DEFAULT_TIME_FORMAT: Final = "%Y%m%d%H%M%S"
RESERVED_NAMES: Final = frozenset({"branch", "tag", "commit", "build_time"})
"""Placeholders every rule has; a named group may not take one of these names."""

_PLAIN = re.compile(r"[A-Za-z0-9._/-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILD_ARG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
_TIME_FORMAT = re.compile(r"(?:%[YymdHMSj]|[A-Za-z0-9._-])+")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_RE2_MAX_MEM: Final = 1 << 20
"""RE2's memory budget for one compiled pattern: a pattern that needs more (say
``(a{100}){100}``) is refused when the rule is saved rather than slowing every push."""


class RuleError(ValueError):
    """A rule field that is not valid, or a template that made no valid tag.

    ``field`` names the rule's field (``ref``, ``image_tags``, …) for the API's error.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class RefMatch:
    """A ref name a rule matched, and the text each named group captured ("" for a group
    that took no part)."""

    name: str
    groups: dict[str, str]


# --- Ref patterns ------------------------------------------------------------------------


def is_regex(pattern: str) -> bool:
    """Whether ``pattern`` is a regular expression rather than a plain ref name."""
    return not _PLAIN.fullmatch(pattern)


def _python_named_groups(pattern: str) -> str:
    """``(?<name>…)`` (PCRE, .NET, Java) written as ``(?P<name>…)`` (what RE2 reads),
    outside character classes and escapes; lookbehinds (``(?<=``, ``(?<!``) are left for
    RE2 to refuse."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # "]" first in a class ([]a] or [^]a]) is a literal, not the end
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 2
                if pattern[i : i + 1] == "]":
                    out.append("]")
                    i += 1
                continue
            if pattern[i + 1 : i + 2] == "]":
                out.append("[]")
                i += 2
                continue
        elif pattern.startswith("(?<", i) and _IDENTIFIER.match(pattern, i + 3):
            out.append("(?P<")
            i += 3
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _compile_regex(pattern: str) -> Any:
    # RE2 is imported by the first rule with a pattern, not by every process that
    # loads the builds.
    import re2

    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(_python_named_groups(pattern), options)
    except re2.error as exc:
        raise RuleError(
            f"ref {pattern[:80]!r} is not a valid regular expression (RE2 syntax: no "
            f"backreferences or lookaround): {exc}",
            "ref",
        ) from exc


def _group_names(compiled: Any) -> list[str]:
    return list(getattr(compiled, "groupindex", {}) or {})


def _check_pattern(pattern: str) -> Any:
    """The compiled regular expression of ``pattern`` (None for a plain name)."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleError("ref must be a branch or tag name, or a regular expression", "ref")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RuleError(f"ref must be at most {MAX_PATTERN_LENGTH} characters", "ref")
    if any(c < " " or c == "\x7f" for c in pattern):
        raise RuleError("ref may not contain control characters", "ref")
    if not is_regex(pattern):
        return None
    compiled = _compile_regex(pattern)
    for name in _group_names(compiled):
        if name in RESERVED_NAMES:
            raise RuleError(
                f"ref {pattern[:80]!r} names a group {name!r}, which is reserved for the "
                f"${{{name}}} placeholder; choose another group name",
                "ref",
            )
    return compiled


@functools.lru_cache(maxsize=1024)
def compile_ref(pattern: str) -> Callable[[str], RefMatch | None]:
    """A matcher for one rule's ``ref``: a plain name matches itself exactly; a regular
    expression must match the whole name. Returns the name and its named groups, or None.

    :raises RuleError: the pattern is empty, too long, or not a valid RE2 expression.
    """
    compiled = _check_pattern(pattern)
    if compiled is None:
        return lambda name: RefMatch(name, {}) if name == pattern else None
    names = _group_names(compiled)

    def match(name: str) -> RefMatch | None:
        found = compiled.fullmatch(name)
        if found is None:
            if name == pattern:
                return RefMatch(name, dict.fromkeys(names, ""))
            return None
        return RefMatch(name, {key: found.group(key) or "" for key in names})

    return match


def ref_groups(pattern: str) -> list[str]:
    """The named groups of a rule's ``ref`` (none for a plain name)."""
    compiled = _check_pattern(pattern)
    return [] if compiled is None else _group_names(compiled)


# --- Tag templates -----------------------------------------------------------------------


def _parts(
    template: str, *, groups: Iterable[str] | None, kind: str | None
) -> list[str | tuple[str, str]]:
    """A template cut into literal text and ``(placeholder, argument)`` pairs.

    :raises RuleError: for an unknown placeholder, a stray ``$``, a placeholder the
        rule's kind cannot fill, or a bad ``commit``/``build_time`` argument.
    """
    known = None if groups is None else set(groups)
    parts: list[str | tuple[str, str]] = []
    position = 0
    for found in _PLACEHOLDER.finditer(template):
        literal = template[position : found.start()]
        if literal:
            parts.append(literal)
        position = found.end()
        name, _, argument = found.group(1).partition(":")
        where = f"image tag template {template!r}"
        if name == "commit":
            if argument and not (argument.isdigit() and 1 <= int(argument) <= 64):
                raise RuleError(
                    f"{where}: ${{commit:N}} takes a length from 1 to 64, not {argument!r}",
                    "image_tags",
                )
        elif name == "build_time":
            if argument and not _TIME_FORMAT.fullmatch(argument):
                raise RuleError(
                    f"{where}: ${{build_time:FORMAT}} takes %Y %y %m %d %H %M %S %j and "
                    "letters, digits, '.', '_', '-' only",
                    "image_tags",
                )
        elif name in ("branch", "tag"):
            if argument:
                raise RuleError(f"{where}: ${{{name}}} takes no argument", "image_tags")
            if kind is not None and kind != name:
                raise RuleError(
                    f"{where} uses ${{{name}}}, but this is a {kind} rule", "image_tags"
                )
        elif not _IDENTIFIER.fullmatch(name) or argument:
            raise RuleError(
                f"{where}: ${{{found.group(1)[:40]}}} is not a placeholder (use ${{branch}}, "
                "${tag}, ${commit}, ${commit:7}, ${build_time:%Y%m%d}, or a named group)",
                "image_tags",
            )
        elif known is not None and name not in known:
            raise RuleError(
                f"{where} uses ${{{name}}}, but the ref has no group named {name!r}",
                "image_tags",
            )
        parts.append((name, argument))
    rest = template[position:]
    if rest:
        parts.append(rest)
    if any(isinstance(part, str) and "$" in part for part in parts):
        raise RuleError(
            f"image tag template {template!r} has a '$' that starts no ${{placeholder}}",
            "image_tags",
        )
    return parts


def _fill(
    template: str,
    parts: list[str | tuple[str, str]],
    values: Mapping[str, str],
    *,
    commit: str,
    build_time: datetime,
) -> str:
    text: list[str] = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
            continue
        name, argument = part
        if name == "commit":
            text.append(commit[: int(argument)] if argument else commit)
        elif name == "build_time":
            text.append(build_time.strftime(argument or DEFAULT_TIME_FORMAT))
        else:
            text.append(values.get(name, ""))
    result = "".join(text)
    try:
        return check_tag(result)
    except NameError_ as exc:
        raise RuleError(
            f"image tag template {template!r} made {result[:140]!r}, which is not a valid "
            "tag (1 to 128 of letters, digits, '_', '.', '-', not starting with '.' or '-')",
            "image_tags",
        ) from exc


def validate_templates(
    templates: Sequence[str],
    *,
    groups: Iterable[str] | None = None,
    kind: str | None = None,
) -> None:
    """Check a rule's image tag templates: one to three, known placeholders only, and
    text that can make a valid tag.

    ``groups`` (the named groups of the rule's ref) and ``kind`` (``branch`` or ``tag``),
    when given, also refuse ``${name}`` for a group the ref lacks and ``${tag}`` in a
    branch rule (or ``${branch}`` in a tag rule).

    :raises RuleError: naming the template.
    """
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise RuleError("image_tags must be a list of 1 to 3 tag templates", "image_tags")
    if not 1 <= len(templates) <= MAX_TEMPLATES:
        raise RuleError(
            f"image_tags must have 1 to {MAX_TEMPLATES} templates, not {len(templates)}",
            "image_tags",
        )
    group_list = None if groups is None else list(groups)
    for template in templates:
        if not isinstance(template, str) or not template:
            raise RuleError("each image tag template must be a non-empty string", "image_tags")
        if len(template) > MAX_TEMPLATE_LENGTH:
            raise RuleError(
                f"image tag template {template[:40]!r}… is longer than {MAX_TEMPLATE_LENGTH}",
                "image_tags",
            )
        parts = _parts(template, groups=group_list, kind=kind)
        values = {"branch": "main", "tag": "v1", **dict.fromkeys(group_list or (), "x")}
        if group_list is None:
            values |= {p[0]: "x" for p in parts if isinstance(p, tuple)}
        _fill(
            template,
            parts,
            values,
            commit="0" * 40,
            build_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        )


def render_tags(
    templates: Sequence[str],
    *,
    match: RefMatch,
    kind: str,
    commit: str,
    build_time: datetime,
) -> list[str]:
    """The image tags a build pushes: each template filled in for this ref, commit and
    time, duplicates dropped, in template order.

    :raises RuleError: naming the template whose result is not a valid tag (a branch
        ``feature/x`` through ``${branch}``, say) or that uses a placeholder this ref
        cannot fill.
    """
    if kind not in RULE_TYPES:
        raise RuleError(f"kind must be branch or tag, not {kind!r}", "type")
    commit = commit.lower()
    if not _COMMIT.fullmatch(commit):
        raise RuleError(f"{commit[:80]!r} is not a commit id", "commit")
    values = {**match.groups, kind: match.name}
    tags: list[str] = []
    for template in templates:
        parts = _parts(template, groups=None, kind=kind)
        tag = _fill(template, parts, values, commit=commit, build_time=build_time)
        if tag not in tags:
            tags.append(tag)
    return tags


# --- Rules -------------------------------------------------------------------------------


def _context_dir(value: object) -> str:
    """``dockerfile_dir`` as ``/`` or ``/sub/dir``: relative to the repository's root
    (a leading ``/`` means that root, as in ACR), never leaving it."""
    if not isinstance(value, str):
        raise RuleError("dockerfile_dir must be a string such as / or /docker", "dockerfile_dir")
    return "/" + _relative_path(value or "/", "dockerfile_dir", allow_root=True)


def _relative_path(value: str, field_name: str, *, allow_root: bool) -> str:
    if len(value) > MAX_PATH_LENGTH:
        raise RuleError(f"{field_name} must be at most {MAX_PATH_LENGTH} characters", field_name)
    if any(c < " " or c == "\x7f" for c in value) or "\\" in value:
        raise RuleError(
            f"{field_name} may not contain control characters or backslashes", field_name
        )
    parts = [part for part in PurePosixPath(value.strip("/")).parts if part not in ("", ".")]
    if ".." in parts:
        raise RuleError(
            f"{field_name} may not contain '..': it stays in the repository", field_name
        )
    if not parts and not allow_root:
        raise RuleError(f"{field_name} must name a file", field_name)
    return "/".join(parts)


def _dockerfile_name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RuleError("dockerfile_name must be a file name such as Dockerfile", "dockerfile_name")
    if value.startswith("/") or value.endswith("/"):
        raise RuleError(
            "dockerfile_name must be a file relative to dockerfile_dir (no leading or "
            "trailing '/')",
            "dockerfile_name",
        )
    return _relative_path(value, "dockerfile_name", allow_root=False)


def _build_args(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise RuleError("build_args must be an object of names to string values", "build_args")
    if len(value) > MAX_BUILD_ARGS:
        raise RuleError(
            f"build_args has {len(value)} entries; at most {MAX_BUILD_ARGS}", "build_args"
        )
    args: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _BUILD_ARG_KEY.fullmatch(key):
            raise RuleError(
                f"build argument name {str(key)[:60]!r} must be letters, digits and '_', "
                "not starting with a digit, at most 128 characters",
                "build_args",
            )
        if not isinstance(item, str):
            raise RuleError(f"build argument {key} must have a string value", "build_args")
        if len(item) > MAX_BUILD_ARG_VALUE or "\x00" in item:
            raise RuleError(
                f"build argument {key} must be at most {MAX_BUILD_ARG_VALUE} characters, "
                "without NUL",
                "build_args",
            )
        args[key] = item
    return args


@dataclass(frozen=True, kw_only=True)
class RuleSpec:
    """The fields of one build rule, as the API and the database hold them.

    ``id`` is the stored rule's id (None before it is stored, ``"builtin-release"`` for
    the built-in rule). Build :meth:`checked` copies before storing: they are valid and
    normalised (``dockerfile_dir`` as ``/`` or ``/a/b``, ``image_tags`` a tuple).
    """

    id: int | str | None = None
    type: str = "branch"
    ref: str = "main"
    dockerfile_dir: str = "/"
    dockerfile_name: str = "Dockerfile"
    image_tags: tuple[str, ...] = ("latest",)
    build_args: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    builtin: bool = False

    def checked(self) -> RuleSpec:
        """This rule validated field by field and normalised.

        :raises RuleError: naming the first field that is not valid.
        """
        if self.type not in RULE_TYPES:
            raise RuleError(f"type must be branch or tag, not {str(self.type)[:40]!r}", "type")
        groups = ref_groups(self.ref)
        validate_templates(self.image_tags, groups=groups, kind=self.type)
        if not isinstance(self.enabled, bool):
            raise RuleError("enabled must be true or false", "enabled")
        return replace(
            self,
            dockerfile_dir=_context_dir(self.dockerfile_dir),
            dockerfile_name=_dockerfile_name(self.dockerfile_name),
            image_tags=tuple(self.image_tags),
            build_args=_build_args(self.build_args),
        )

    @classmethod
    def from_json(cls, body: Mapping[str, Any], *, base: RuleSpec | None = None) -> RuleSpec:
        """A checked rule from an API body: every field of ``base`` (for a PATCH) or the
        defaults, overridden by the fields the body gives. Other keys are left to the
        caller.

        :raises RuleError: naming the field with the wrong type or value.
        """
        start = base or cls()
        changes: dict[str, Any] = {}
        for name in ("type", "ref", "dockerfile_dir", "dockerfile_name"):
            if name in body:
                if not isinstance(body[name], str):
                    raise RuleError(f"{name} must be a string", name)
                changes[name] = body[name]
        if "image_tags" in body:
            tags = body["image_tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RuleError("image_tags must be a list of 1 to 3 strings", "image_tags")
            changes["image_tags"] = tuple(tags)
        if "build_args" in body:
            changes["build_args"] = body["build_args"]
        if "enabled" in body:
            changes["enabled"] = body["enabled"]
        return replace(start, **changes).checked()

    def to_json(self) -> dict[str, Any]:
        """The rule as the API shows it."""
        return {
            "id": self.id,
            "type": self.type,
            "ref": self.ref,
            "regex": is_regex(self.ref),
            "dockerfile_dir": self.dockerfile_dir,
            "dockerfile_name": self.dockerfile_name,
            "image_tags": list(self.image_tags),
            "build_args": dict(self.build_args),
            "enabled": self.enabled,
            "builtin": self.builtin,
        }


BUILTIN_RELEASE_RULE: Final = RuleSpec(
    id="builtin-release",
    type="tag",
    ref="release-v(?<version>.+)",
    image_tags=("${version}",),
    builtin=True,
)
"""ACR's built-in rule: a git tag ``release-v$version`` builds image tag ``$version``
from the Dockerfile at the repository's root, unless a custom rule matches that tag."""


def locate(checkout: Path, rule: RuleSpec) -> tuple[Path, Path]:
    """The build context folder and the Dockerfile of ``rule`` inside a checked-out
    commit, after following symbolic links, which must stay inside the checkout.

    :raises RuleError: the folder or the file is missing, or a link leads out of the
        repository (a commit could otherwise hand the builder the server's own files).
    """
    root = checkout.resolve()
    context_rel = rule.dockerfile_dir.strip("/")
    context = (root / context_rel).resolve()
    shown_dir = rule.dockerfile_dir
    if not context.is_relative_to(root):
        raise RuleError(
            f"dockerfile_dir {shown_dir} leads out of the repository through a symbolic link",
            "dockerfile_dir",
        )
    if not context.is_dir():
        raise RuleError(
            f"dockerfile_dir {shown_dir} is not a folder in this commit", "dockerfile_dir"
        )
    dockerfile = (context / rule.dockerfile_name).resolve()
    shown_file = "/" + "/".join(filter(None, (context_rel, rule.dockerfile_name)))
    if not dockerfile.is_relative_to(root):
        raise RuleError(
            f"the Dockerfile {shown_file} leads out of the repository through a symbolic link",
            "dockerfile_name",
        )
    if not dockerfile.is_file():
        raise RuleError(f"there is no Dockerfile at {shown_file} in this commit", "dockerfile_name")
    return context, dockerfile


# --- Matching ----------------------------------------------------------------------------


class RuleLike(Protocol):
    """What :func:`matching_rules` reads of a rule (a :class:`RuleSpec` or a stored row)."""

    @property
    def type(self) -> str: ...

    @property
    def ref(self) -> str: ...

    @property
    def enabled(self) -> bool: ...


R = TypeVar("R", bound=RuleLike)


def matching_rules(rules: Iterable[R], kind: str, name: str) -> list[tuple[R | RuleSpec, RefMatch]]:
    """The rules a push of branch or tag ``name`` builds, each with its match.

    Enabled rules of that ``kind`` whose ref matches, in the given order. For a tag, the
    built-in release rule joins when no custom rule matches that tag, enabled or not: a
    rule the user wrote for those tags and switched off must not hand them to the
    built-in rule. A stored ref that no longer compiles matches nothing.
    """
    found: list[tuple[R | RuleSpec, RefMatch]] = []
    custom_matched = False
    for rule in rules:
        if rule is BUILTIN_RELEASE_RULE or getattr(rule, "builtin", False):
            continue
        if rule.type != kind:
            continue
        try:
            match = compile_ref(rule.ref)(name)
        except RuleError:
            continue
        if match is None:
            continue
        custom_matched = True
        if rule.enabled:
            found.append((rule, match))
    if kind == "tag" and not custom_matched:
        builtin = compile_ref(BUILTIN_RELEASE_RULE.ref)(name)
        if builtin is not None:
            found.append((BUILTIN_RELEASE_RULE, builtin))
    return found
