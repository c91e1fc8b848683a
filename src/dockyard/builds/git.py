"""The git client of builds: list a source's refs, fetch one exact commit.

Everything runs the ``git`` program, never a shell, and treats the URL and the
credentials as hostile and secret respectively:

- URLs are checked first (:func:`check_url`): only ``https://``, ``ssh://``, scp-like
  ``user@host:path`` and ``git://``; ``http://``, ``file://`` and hosts that are this
  machine (loopback, link-local such as the cloud metadata address, unspecified) only when
  the administrator allows local sources. A URL that starts with ``-`` (an option to git or
  ssh), holds a newline, a ``transport::`` helper or embedded credentials is refused.
  Host names are not resolved here: a name may still resolve to a loopback address, which
  is why local sources are off by default rather than the check being a wall.
- Credentials never reach argv, a URL, a log line or an error message: the user name and
  token go to git through ``GIT_ASKPASS`` (a tiny script in a 0700 temporary folder that
  prints environment variables), an ssh key through a 0600 file named in
  ``GIT_SSH_COMMAND``; every line shown is passed through a :class:`Masker` anyway.
- git runs without the machine's or the user's configuration (``HOME`` is the temporary
  folder, ``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``), never prompts
  (``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode``), speaks only the allowed protocols
  (``GIT_ALLOW_PROTOCOL``; ``ext::`` never) and is killed with its whole process group
  when the timeout passes.

ssh host keys: each run starts from an empty known_hosts file and accepts the key it
meets (``StrictHostKeyChecking=accept-new``), so the key is not pinned between runs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import selectors
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

ErrorKind = Literal[
    "invalid_url", "not_allowed", "unreachable", "auth", "not_found", "timeout", "failed"
]

MAX_URL_LENGTH: Final = 2048
MASK: Final = "****"

_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(
    r"(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.+)"
)
_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
"""git's ``<transport>::<address>`` form, which runs ``git-remote-<transport>``."""
_SSH_USER = re.compile(r"[A-Za-z0-9._-]+")
_LOCAL_NAMES: Final = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

_ASKPASS = """#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "$DOCKYARD_GIT_USERNAME" ;;
  *) printf '%s\\n' "$DOCKYARD_GIT_TOKEN" ;;
esac
"""
"""git asks "Username for 'https://host': " then "Password for 'https://user@host': "."""

_PASSED_ENV: Final = (
    "PATH",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)
"""What git inherits from the server's environment: where programs are, and the proxy
the operator set for outbound traffic. Nothing else (no SSH_AUTH_SOCK: the server's own
keys must never open a user's source)."""


@dataclass(frozen=True)
class Credentials:
    """What opens a private source: a user name and token (HTTPS) or an ssh private key."""

    username: str = ""
    token: str = ""
    ssh_private_key: str = ""

    def secrets(self) -> list[str]:
        """The values no log line may show."""
        return [s for s in (self.token, self.ssh_private_key) if s]

    def __repr__(self) -> str:
        kinds = [k for k in ("token", "ssh_private_key") if getattr(self, k)]
        return f"Credentials(username={self.username!r}, set={kinds})"


class GitError(Exception):
    """A git operation that failed, with a one-line message a user can act on.

    ``kind`` says what went wrong: ``invalid_url`` (malformed), ``not_allowed`` (a scheme or
    host the settings refuse), ``unreachable`` (no connection), ``auth`` (credentials
    refused or missing), ``not_found`` (no repository, or no such commit), ``timeout``,
    ``failed`` (anything else).
    """

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


# --- URLs -------------------------------------------------------------------------------


def _is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine or its link (literal addresses and the names
    every resolver maps to loopback)."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _check_host(host: str, url: str, *, allow_local: bool) -> None:
    if not host:
        raise GitError("invalid_url", f"the URL {url!r} names no host")
    if host.startswith("-"):
        raise GitError("invalid_url", "a host name may not start with '-'")
    if not allow_local and _is_local_host(host):
        raise GitError(
            "not_allowed",
            f"{host} is this machine or its link; sources there are allowed only when the "
            "administrator allows local sources (DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES)",
        )


def check_url(url: str, *, allow_local: bool) -> str:
    """Check a source URL before git sees it, and return it.

    Accepted: ``https://host/path``, ``ssh://[user@]host[:port]/path``,
    ``[user@]host:path`` (scp-like ssh) and ``git://host/path``; ``http://`` and
    ``file:///path`` only with ``allow_local`` (plain HTTP would send the token in clear;
    a file path reads the server's own disk), and hosts that are this machine likewise.

    :raises GitError: ``invalid_url`` or ``not_allowed``, saying what to change.
    """
    if not url:
        raise GitError("invalid_url", "the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise GitError("invalid_url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise GitError(
            "invalid_url",
            "the URL may not contain spaces, newlines or other control characters, and must "
            "be ASCII (percent-encode the path, write host names in their xn-- form)",
        )
    if url.startswith("-"):
        raise GitError("invalid_url", "the URL may not start with '-'")
    scheme_match = _SCHEME.match(url)
    if scheme_match is None:
        if _HELPER.match(url):
            raise GitError("not_allowed", "git remote helpers (transport::address) are refused")
        scp = _SCP_LIKE.fullmatch(url)
        if scp is None or "/" in url.split(":", 1)[0]:
            raise GitError(
                "invalid_url",
                f"{url!r} is not a URL: use https://host/path, ssh://host/path, "
                "git@host:path or git://host/path",
            )
        if scp["user"] and scp["user"].startswith("-"):
            raise GitError("invalid_url", "a user name may not start with '-'")
        _check_host(scp["host"], url, allow_local=allow_local)
        return url
    scheme = scheme_match.group(1).lower()
    if scheme not in {"https", "http", "ssh", "git", "file"}:
        raise GitError(
            "not_allowed",
            f"the scheme {scheme!r} is not allowed: use https, ssh or git",
        )
    if scheme in {"http", "file"} and not allow_local:
        why = (
            "plain http sends credentials in clear; use https://"
            if scheme == "http"
            else "a file URL reads this server's own disk"
        )
        raise GitError(
            "not_allowed",
            f"{scheme}:// sources are allowed only when the administrator allows local "
            f"sources (DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES): {why}",
        )
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise GitError("invalid_url", f"the URL is malformed: {exc}") from exc
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise GitError("invalid_url", "a file URL must be file:///absolute/path")
        return url
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if scheme != "ssh" or ":" in userinfo:
            raise GitError(
                "invalid_url",
                "the URL may not contain credentials: give the user name and token as the "
                "source's credentials, where they are encrypted and never shown",
            )
        if not _SSH_USER.fullmatch(userinfo) or userinfo.startswith("-"):
            raise GitError("invalid_url", f"{userinfo!r} is not a valid ssh user name")
    _check_host(parts.hostname or "", url, allow_local=allow_local)
    if not parts.path or parts.path == "/":
        raise GitError("invalid_url", "the URL names no repository path")
    return url


# --- Masking ---------------------------------------------------------------------------


_BASIC = re.compile(r"(?i)(basic\s+)([A-Za-z0-9+/=_-]{4,})")
MIN_SECRET_LENGTH: Final = 4
"""Shorter values are not masked: replacing every "ab" would garble each log line and
hide nothing a guess would not find."""


def _base64_cores(secret: bytes) -> Iterator[str]:
    """The stretches of base64 text any encoding containing ``secret`` shows, whatever
    the offset of ``secret`` in the encoded bytes: base64 works in 3-byte groups, so
    for each of the three alignments the groups made only of the secret's bytes encode
    to the same characters."""
    for offset in range(3):
        lead = (3 - offset) % 3  # bytes of the secret that complete the first group
        body = secret[lead:]
        body = body[: len(body) - len(body) % 3]
        if len(body) >= 3:
            yield base64.b64encode(body).decode("ascii")


class Masker:
    """Replaces every secret in a line, and the forms it travels in, with ``****``.

    Forms: the value itself, percent-encoded (as in a URL), base64 at any alignment (as
    inside an HTTP Basic header), and any ``Basic <base64>`` whose decoded text holds a
    secret. A multi-line secret (an ssh key) is masked line by line.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        values: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            parts = [secret, *(line.strip() for line in secret.splitlines())]
            for part in parts:
                if len(part) < MIN_SECRET_LENGTH or (part != secret and len(part) < 16):
                    continue
                values.add(part)
                values.add(urllib.parse.quote(part, safe=""))
                values.add(urllib.parse.quote_plus(part, safe=""))
                values.update(c for c in _base64_cores(part.encode()) if len(c) >= 8)
        self._raw = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self._raw)) if self._raw else None

    def _basic(self, match: re.Match[str]) -> str:
        token = match.group(2)
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return match.group(0)
        if any(value in decoded for value in self._raw):
            return match.group(1) + MASK
        return match.group(0)

    def __call__(self, line: str) -> str:
        if self._pattern is None:
            return line
        line = _BASIC.sub(self._basic, line)
        return self._pattern.sub(MASK, line)


# --- Running git -----------------------------------------------------------------------


@dataclass
class _Run:
    returncode: int
    stdout: str
    stderr: list[str]


@contextmanager
def _environment(credentials: Credentials | None, *, allow_local: bool) -> Iterator[dict[str, str]]:
    """The environment git runs in, with a private temporary home removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dockyard-git-") as home_name:
        home = Path(home_name)
        home.chmod(0o700)
        env = {k: v for k in _PASSED_ENV if (v := os.environ.get(k)) is not None}
        protocols = ["https", "ssh", "git"] + (["http", "file"] if allow_local else [])
        env.update(
            HOME=str(home),
            LC_ALL="C",
            LANG="C",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_TERMINAL_PROMPT="0",
            GIT_ALLOW_PROTOCOL=":".join(protocols),
            GIT_PROTOCOL_FROM_USER="0",
            GIT_TEMPLATE_DIR=str(home / "templates"),
            GIT_NO_REPLACE_OBJECTS="1",
        )
        (home / "templates").mkdir()
        creds = credentials or Credentials()
        if creds.token:
            # Without a token git finds no askpass and fails "terminal prompts disabled",
            # which says "credentials needed" better than an empty password refused.
            askpass = home / "askpass"
            askpass.write_text(_ASKPASS)
            askpass.chmod(0o700)
            env["GIT_ASKPASS"] = str(askpass)
            env["DOCKYARD_GIT_USERNAME"] = creds.username or "git"
            env["DOCKYARD_GIT_TOKEN"] = creds.token
        ssh = [
            "ssh",
            "-F",
            os.devnull,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={home / 'known_hosts'}",
            "-o",
            "ConnectTimeout=15",
        ]
        if creds.ssh_private_key:
            key = home / "id_key"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(creds.ssh_private_key.strip() + "\n")
            ssh += ["-i", str(key)]
        else:
            ssh += ["-o", "IdentityFile=none"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
        env["GIT_SSH_VARIANT"] = "ssh"
        yield env


def _run(
    args: list[str],
    env: dict[str, str],
    *,
    deadline: float,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    mask: Masker,
) -> _Run:
    """Run ``git`` with ``args``; stderr lines (masked) go to ``on_line`` as they come.

    The process gets its own session, so a timeout kills git and everything it started
    (ssh, git-remote-https, index-pack) at once.
    """
    argv = ["git", "-c", "protocol.ext.allow=never", *args]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = bytearray()
    err_lines: list[str] = []
    pending = b""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "out")
    selector.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    try:
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                raise TimeoutError
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.data == "out":
                    out += chunk
                    continue
                pending += chunk
                *complete, pending = re.split(rb"[\r\n]", pending)
                for raw in complete:
                    _emit(raw, err_lines, on_line, mask)
        if pending:
            _emit(pending, err_lines, on_line, mask)
        remaining = deadline - time.monotonic()
        try:
            returncode = proc.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise TimeoutError from exc
    finally:
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
        if proc.poll() is None:
            _kill_group(proc)
    return _Run(returncode, out.decode("utf-8", "replace"), err_lines)


def _emit(
    raw: bytes, lines: list[str], on_line: Callable[[str], None] | None, mask: Masker
) -> None:
    text = mask(raw.decode("utf-8", "replace").rstrip())
    if not text:
        return
    lines.append(text)
    if on_line is not None:
        on_line(text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _display(url: str) -> str:
    """The URL as messages show it: without query or fragment, which could carry tokens
    some hosts accept there."""
    return url.split("?", 1)[0].split("#", 1)[0]


_COMPLAINTS: Final[tuple[tuple[ErrorKind, tuple[str, ...], str], ...]] = (
    (
        "auth",
        ("could not read username", "could not read password", "terminal prompts disabled"),
        "{url} needs credentials, and none were given",
    ),
    (
        "auth",
        (
            "authentication failed",
            "permission denied (publickey",
            "http basic: access denied",
            "requested url returned error: 403",
            "invalid username or password",
        ),
        "authentication failed for {url}",
    ),
    (
        "auth",
        ("host key verification failed",),
        "the ssh host key of {url} could not be verified",
    ),
    (
        "unreachable",
        (
            "could not resolve host",
            "could not resolve hostname",
            "name or service not known",
            "temporary failure in name resolution",
        ),
        "could not resolve the host of {url}",
    ),
    (
        "unreachable",
        (
            "failed to connect",
            "connection refused",
            "unable to connect",
            "connection timed out",
            "no route to host",
            "network is unreachable",
            "connection reset",
            "couldn't connect to server",
        ),
        "could not connect to {url}",
    ),
    (
        "unreachable",
        ("ssl certificate", "certificate verify", "server certificate"),
        "the TLS certificate of {url} is not trusted",
    ),
    (
        "not_found",
        (
            "not our ref",
            "unadvertised object",
            "couldn't find remote ref",
            "no such remote ref",
            "not a valid object",
            "bad object",
        ),
        "commit {commit} was not found in {url}",
    ),
    (
        "not_found",
        (
            "not found",
            "does not appear to be a git repository",
            "is this a git repository",
            "not exported",
            "no such repository",
            "repository does not exist",
            "not a git repository",
        ),
        "{url} is not a git repository (or does not exist)",
    ),
)
"""git's complaints (in the C locale), first match wins, each with the one line a user
reads instead."""


def _classify(stderr: list[str], url: str, what: str, commit: str = "") -> GitError:
    """Turn git's complaints into one error kind and one clear line."""
    low = "\n".join(stderr).lower()
    shown = _display(url)
    for kind, needles, message in _COMPLAINTS:
        if "{commit}" in message and not commit:
            continue
        if any(needle in low for needle in needles):
            return GitError(kind, message.format(url=shown, commit=commit))
    last = next((line for line in reversed(stderr) if line.strip()), "no output")
    last = last.removeprefix("fatal: ").removeprefix("error: ")
    return GitError("failed", f"git {what} failed for {shown}: {last[:300]}")


def _secrets_masker(credentials: Credentials | None) -> Masker:
    return Masker(credentials.secrets() if credentials else [])


def ls_remote(
    url: str,
    credentials: Credentials | None,
    *,
    timeout: float = 30,
    allow_local: bool = False,
) -> dict[str, str]:
    """The branches and tags of a source: ``{"refs/heads/main": sha, "refs/tags/v1": sha}``.

    An annotated tag maps to the commit it points to (the peeled ``^{}`` line), since
    that is what a build checks out.

    :raises GitError: with its kind; the message never contains a credential.
    """
    url = check_url(url, allow_local=allow_local)
    mask = _secrets_masker(credentials)
    deadline = time.monotonic() + timeout
    with _environment(credentials, allow_local=allow_local) as env:
        # The packet trace tells a git server from a web server that answers 200 to
        # anything: git takes such a page for a "dumb" repository with no refs.
        packets = Path(env["HOME"]) / "packets"
        env["GIT_TRACE_PACKET"] = str(packets)
        try:
            run = _run(
                ["ls-remote", "--heads", "--tags", "--", url],
                env,
                deadline=deadline,
                mask=mask,
            )
        except TimeoutError:
            raise GitError(
                "timeout", f"git ls-remote of {_display(url)} took longer than {timeout:g} s"
            ) from None
        spoke_git = packets.exists() and packets.stat().st_size > 0
    if run.returncode != 0:
        raise _classify(run.stderr, url, "ls-remote")
    if not run.stdout.strip() and not spoke_git:
        raise GitError(
            "not_found",
            f"{_display(url)} is not a git repository (the server answered as a plain web server)",
        )
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in run.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if not _COMMIT_ID.fullmatch(sha) or not ref.startswith(("refs/heads/", "refs/tags/")):
            continue
        if ref.endswith("^{}"):
            peeled[ref[:-3]] = sha
        else:
            refs[ref] = sha
    refs.update((ref, sha) for ref, sha in peeled.items() if ref in refs)
    return dict(sorted(refs.items()))


def fetch_commit(
    url: str,
    credentials: Credentials | None,
    sha: str,
    dest: Path,
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    allow_local: bool = False,
) -> str:
    """Fetch exactly commit ``sha`` (depth 1, no other history) into ``dest`` and check it
    out; returns the commit's subject line.

    The build then sees the commit the trigger named, even if the branch moved on since.
    ``dest`` must not exist or be empty. Servers speaking protocol v2 (GitHub, GitLab,
    Gitea, git ≥ 2.18) hand out any commit by id; an old server that refuses gives a
    ``not_found`` error naming the commit.

    :raises GitError: with its kind; ``on_line`` received git's progress lines, masked.
    """
    url = check_url(url, allow_local=allow_local)
    sha = sha.strip().lower()
    if not _COMMIT_ID.fullmatch(sha):
        raise GitError("failed", f"{sha[:80]!r} is not a full commit id (40 hex digits)")
    if dest.exists() and any(dest.iterdir()):
        raise GitError("failed", f"the work folder {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    mask = _secrets_masker(credentials)
    deadline = time.monotonic() + timeout
    steps: list[tuple[str, list[str]]] = [
        ("init", ["init", "--quiet", str(dest)]),
        (
            "fetch",
            [
                "-C",
                str(dest),
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-recurse-submodules",
                "--depth",
                "1",
                "--",
                url,
                sha,
            ],
        ),
        (
            "checkout",
            [
                "-C",
                str(dest),
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--detach",
                f"{sha}^{{commit}}",
            ],
        ),
        ("log", ["-C", str(dest), "log", "-1", "--format=%s", f"{sha}^{{commit}}"]),
    ]
    with _environment(credentials, allow_local=allow_local) as env:
        run = _Run(0, "", [])
        for what, args in steps:
            if on_line is not None and what == "fetch":
                on_line(mask(f"fetching commit {sha} from {_display(url)}"))
            try:
                run = _run(args, env, deadline=deadline, on_line=on_line, mask=mask)
            except TimeoutError:
                raise GitError(
                    "timeout",
                    f"fetching commit {sha} from {_display(url)} took longer than {timeout:g} s",
                ) from None
            if run.returncode != 0:
                raise _classify(run.stderr, url, what, commit=sha)
    return mask(run.stdout.strip())
