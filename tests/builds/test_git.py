"""The builds' git client against a real git server on loopback (HTTP with Basic auth,
git daemon, file URLs): refs, exact-commit fetches, every failure kind, and that no
credential shows in any message or log line."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from dockyard.builds.git import Credentials, GitError, Masker, check_url, fetch_commit, ls_remote
from dockyard.builds.hooks import poll_events
from tests.fixtures.gitserver import GitServer, MakeRepo

_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBjZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2UAAAAJmZha2Vr\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


# --- the test server itself, driven by plain git ---------------------------------------

_ENV = {
    "PATH": os.environ["PATH"],
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


def _clone(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "clone", "--quiet", url, str(dest)],
        env=_ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_http_needs_the_token_and_git_daemon_serves(
    git_server: GitServer, git_repo_factory: MakeRepo, tmp_path: Path
) -> None:
    repo = git_repo_factory("smoke", {"README": "hello\n", "sub/Dockerfile": b"FROM scratch\n"})
    second = repo.commit({"README": "second\n"}, "second commit")
    assert repo.head() == second

    bare = repo.http_url.replace("http://", f"http://{git_server.username}:{git_server.token}@")
    done = _clone(bare, tmp_path / "http")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "http" / "README").read_text() == "second\n"
    assert (tmp_path / "http" / "sub" / "Dockerfile").read_text() == "FROM scratch\n"

    refused = _clone(repo.http_url.replace("http://", "http://builder:wrong@"), tmp_path / "bad")
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr
    assert any(r.status == 401 for r in git_server.requests)

    done = _clone(repo.git_url, tmp_path / "daemon")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "daemon" / "README").read_text() == "second\n"


def test_branches_tags_and_deletions(git_repo_factory: MakeRepo, tmp_path: Path) -> None:
    repo = git_repo_factory("refs", {"a": "1"})
    first = repo.head()
    on_dev = repo.commit({"a": "2"}, "on dev", branch="dev")
    assert repo.head("dev") == on_dev
    assert repo.head("main") == first
    assert repo.tag("v1", message="release v1") == on_dev
    assert repo.tag_object("v1") != on_dev
    assert repo.branch("feature", at=first) == first
    repo.delete_ref("refs/heads/feature")
    listed = subprocess.run(
        ["git", "ls-remote", repo.file_url],
        env=_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "refs/heads/dev" in listed
    assert "refs/tags/v1^{}" in listed
    assert "refs/heads/feature" not in listed


# --- the client ---------------------------------------------------------------------------


def _creds(server: GitServer) -> Credentials:
    return Credentials(username=server.username, token=server.token)


def _assert_clean(text: str, server: GitServer) -> None:
    """Neither the token nor any form of it travels in ``text``."""
    basic = base64.b64encode(f"{server.username}:{server.token}".encode()).decode()
    for form in (server.token, urllib.parse.quote(server.token), basic, server.token[4:]):
        assert form not in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/app.git",
        "https://gitlab.example.com:8443/group/sub/app",
        "ssh://git@github.com/acme/app.git",
        "ssh://git@example.com:2222/acme/app.git",
        "git@github.com:acme/app.git",
        "github.com:acme/app.git",
        "git://example.org/app.git",
    ],
)
def test_urls_accepted_by_default(url: str) -> None:
    assert check_url(url, allow_local=False) == url


@pytest.mark.parametrize(
    ("url", "kind", "words"),
    [
        ("", "invalid_url", "empty"),
        ("-uhello", "invalid_url", "'-'"),
        ("--upload-pack=touch /tmp/x", "invalid_url", "spaces"),
        ("ssh://-oProxyCommand=touch%20x/y", "invalid_url", "'-'"),
        ("-oProxyCommand=x:y", "invalid_url", "'-'"),
        ("https://github.com/a\n/b", "invalid_url", "newlines"),
        ("https://user:tok3n@github.com/a/b", "invalid_url", "credentials"),
        ("https://tok3n@github.com/a/b", "invalid_url", "credentials"),
        ("ssh://git:pw@github.com/a/b", "invalid_url", "credentials"),
        ("ext::sh -c touch% /tmp/pwned", "invalid_url", "spaces"),
        ("ext::sh", "not_allowed", "transport::address"),
        ("fd::17", "not_allowed", "transport::address"),
        ("ftp://example.org/a.git", "not_allowed", "'ftp'"),
        ("http://example.org/a.git", "not_allowed", "in clear"),
        ("file:///srv/repos/a.git", "not_allowed", "DOCKYARD_BUILD_ALLOW_LOCAL_SOURCES"),
        ("https://127.0.0.1/a.git", "not_allowed", "this machine"),
        ("https://localhost/a.git", "not_allowed", "this machine"),
        ("https://[::1]/a.git", "not_allowed", "this machine"),
        ("https://169.254.169.254/latest", "not_allowed", "this machine"),
        ("git@127.0.0.1:a.git", "not_allowed", "this machine"),
        ("/srv/repos/a.git", "invalid_url", "not a URL"),
        ("https://github.com", "invalid_url", "no repository path"),
        ("https://github.com:99999/a", "invalid_url", "malformed"),
        ("https:///a.git", "invalid_url", "no host"),
    ],
)
def test_urls_refused(url: str, kind: str, words: str) -> None:
    with pytest.raises(GitError) as caught:
        check_url(url, allow_local=False)
    assert caught.value.kind == kind
    assert words in str(caught.value)
    assert "tok3n" not in str(caught.value)


def test_local_urls_only_when_allowed() -> None:
    for url in (
        "file:///srv/repos/a.git",
        "http://127.0.0.1:8080/a.git",
        "git://[::1]/a",
        "git@[::1]:a.git",
    ):
        assert check_url(url, allow_local=True) == url
    with pytest.raises(GitError) as caught:
        check_url("file://otherhost/srv/a.git", allow_local=True)
    assert caught.value.kind == "invalid_url"


def test_ls_remote_over_http_with_a_token(
    git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    repo = git_repo_factory("lsr", {"Dockerfile": "FROM scratch\n"})
    main = repo.head()
    dev = repo.commit({"x": "1"}, "dev work", branch="dev")
    light = repo.tag("v1", at=main)
    annotated = repo.tag("release-v2.0", at=dev, message="the 2.0 release")
    before = len(git_server.requests)

    refs = ls_remote(repo.http_url, _creds(git_server), allow_local=True)

    assert refs == {
        "refs/heads/dev": dev,
        "refs/heads/main": main,
        "refs/tags/release-v2.0": annotated,  # peeled: the commit, not the tag object
        "refs/tags/v1": light,
    }
    assert repo.tag_object("release-v2.0") != annotated
    sent = git_server.requests[before:]
    # The token went in the Authorization header after the server asked, never the URL.
    assert sent[0].status == 401
    assert any(r.status == 200 and r.authorization.startswith("Basic ") for r in sent)
    assert all(git_server.token not in r.path for r in sent)


def test_a_poll_sees_what_moved(git_server: GitServer, git_repo_factory: MakeRepo) -> None:
    repo = git_repo_factory("poll", {"a": "1"})
    repo.branch("stale")
    before = ls_remote(repo.http_url, _creds(git_server), allow_local=True)
    moved = repo.commit({"a": "2"}, "moved on")
    tagged = repo.tag("v9", message="nine")
    repo.delete_ref("refs/heads/stale")
    after = ls_remote(repo.http_url, _creds(git_server), allow_local=True)
    assert [(e.ref, e.commit, e.deleted) for e in poll_events(before, after)] == [
        ("refs/heads/main", moved, False),
        ("refs/heads/stale", "", True),
        ("refs/tags/v9", tagged, False),
    ]


def test_ls_remote_authentication_failures(
    git_server: GitServer, git_repo_factory: MakeRepo
) -> None:
    repo = git_repo_factory("auth", {"a": "1"})
    wrong = Credentials(username=git_server.username, token=git_server.token + "-revoked")
    with pytest.raises(GitError) as caught:
        ls_remote(repo.http_url, wrong, allow_local=True)
    assert caught.value.kind == "auth"
    assert str(caught.value) == f"authentication failed for {repo.http_url}"
    _assert_clean(str(caught.value), git_server)
    assert wrong.token not in str(caught.value)

    with pytest.raises(GitError) as caught:
        ls_remote(repo.http_url, None, allow_local=True)
    assert caught.value.kind == "auth"
    assert "needs credentials" in str(caught.value)


def test_ls_remote_unreachable_and_not_a_repository(
    git_server: GitServer, git_repo_factory: MakeRepo, tmp_path: Path
) -> None:
    creds = _creds(git_server)
    with pytest.raises(GitError) as caught:
        ls_remote(f"http://127.0.0.1:{_closed_port()}/a.git", creds, allow_local=True)
    assert caught.value.kind == "unreachable"
    assert str(caught.value).startswith("could not connect to http://127.0.0.1:")
    _assert_clean(str(caught.value), git_server)

    with pytest.raises(GitError) as caught:
        ls_remote(f"git://127.0.0.1:{_closed_port()}/a.git", None, allow_local=True)
    assert caught.value.kind == "unreachable"

    missing = [
        git_server.http_url("no-such-repo"),
        f"{git_server.http_base}/plain/site",  # a web server, not a git server
        git_server.git_url("no-such-repo"),
        (tmp_path / "nothing").as_uri(),
    ]
    for url in missing:
        with pytest.raises(GitError) as caught:
            ls_remote(url, creds, allow_local=True)
        assert caught.value.kind == "not_found", (url, str(caught.value))
        assert "is not a git repository" in str(caught.value)
        _assert_clean(str(caught.value), git_server)


def test_an_empty_repository_has_no_refs(git_server: GitServer) -> None:
    name = git_server.unique_name("empty")
    subprocess.run(
        ["git", "init", "--quiet", "--bare", str(git_server.root / f"{name}.git")], check=True
    )
    assert ls_remote(git_server.http_url(name), _creds(git_server), allow_local=True) == {}
    assert ls_remote(git_server.git_url(name), None, allow_local=True) == {}


def test_local_sources_refused_unless_allowed(git_repo_factory: MakeRepo, tmp_path: Path) -> None:
    repo = git_repo_factory("local", {"a": "1"})
    for url in (repo.file_url, repo.http_url, repo.git_url):
        with pytest.raises(GitError) as caught:
            ls_remote(url, None)
        assert caught.value.kind == "not_allowed"
        with pytest.raises(GitError) as caught:
            fetch_commit(url, None, repo.head(), tmp_path / "w", timeout=30)
        assert caught.value.kind == "not_allowed"
        assert not (tmp_path / "w").exists()  # refused before anything was written
    assert ls_remote(repo.file_url, None, allow_local=True) == {"refs/heads/main": repo.head()}


def test_fetch_the_exact_older_commit_after_the_branch_moved_on(
    git_server: GitServer, git_repo_factory: MakeRepo, tmp_path: Path
) -> None:
    repo = git_repo_factory(
        "fetch", {"Dockerfile": "FROM scratch\nCOPY app /app\n", "app": "version 1\n"}
    )
    first = repo.commit({"app": "version 2\n", "docker/Dockerfile.prod": "FROM x\n"}, "Ship v2")
    repo.commit({"app": "version 3\n"}, "Ship v3")
    assert repo.head() != first
    lines: list[str] = []

    subject = fetch_commit(
        repo.http_url,
        _creds(git_server),
        first,
        tmp_path / "work",
        timeout=60,
        on_line=lines.append,
        allow_local=True,
    )

    work = tmp_path / "work"
    assert subject == "Ship v2"
    assert (work / "app").read_text() == "version 2\n"
    assert (work / "docker" / "Dockerfile.prod").read_text() == "FROM x\n"
    head = (work / ".git" / "HEAD").read_text().strip()
    assert head == first  # detached at that commit
    shallow = (work / ".git" / "shallow").read_text().split()
    assert shallow == [first]  # depth 1: no other history came along
    assert any(first in line for line in lines)
    for line in lines:
        _assert_clean(line, git_server)
    config = (work / ".git" / "config").read_text()
    _assert_clean(config, git_server)


def test_fetch_over_git_daemon_and_file(git_repo_factory: MakeRepo, tmp_path: Path) -> None:
    repo = git_repo_factory("daemon", {"f": "one\n"})
    old = repo.head()
    repo.commit({"f": "two\n"}, "two")
    assert fetch_commit(repo.git_url, None, old, tmp_path / "a", timeout=60, allow_local=True)
    assert (tmp_path / "a" / "f").read_text() == "one\n"
    assert (
        fetch_commit(repo.file_url, None, repo.head(), tmp_path / "b", timeout=60, allow_local=True)
        == "two"
    )
    assert (tmp_path / "b" / "f").read_text() == "two\n"


def test_fetch_an_annotated_tag(
    git_server: GitServer, git_repo_factory: MakeRepo, tmp_path: Path
) -> None:
    repo = git_repo_factory("tags", {"VERSION": "1.4\n"})
    commit = repo.tag("release-v1.4", message="release 1.4")
    repo.commit({"VERSION": "1.5-dev\n"}, "Start 1.5")
    refs = ls_remote(repo.http_url, _creds(git_server), allow_local=True)
    assert refs["refs/tags/release-v1.4"] == commit
    # Also when given the tag object's id (what some hooks send as "after").
    for sha, dest in ((commit, "c"), (repo.tag_object("release-v1.4"), "t")):
        subject = fetch_commit(
            repo.http_url, _creds(git_server), sha, tmp_path / dest, timeout=60, allow_local=True
        )
        assert subject == "initial commit"
        assert (tmp_path / dest / "VERSION").read_text() == "1.4\n"


def test_fetch_failures(git_server: GitServer, git_repo_factory: MakeRepo, tmp_path: Path) -> None:
    repo = git_repo_factory("fail", {"a": "1"})
    creds = _creds(git_server)
    absent = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError) as caught:
        fetch_commit(repo.http_url, creds, absent, tmp_path / "a", timeout=60, allow_local=True)
    assert caught.value.kind == "not_found"
    assert str(caught.value) == f"commit {absent} was not found in {repo.http_url}"

    with pytest.raises(GitError) as caught:
        fetch_commit(repo.http_url, creds, "main", tmp_path / "b", timeout=60, allow_local=True)
    assert caught.value.kind == "failed"
    assert "not a full commit id" in str(caught.value)

    bad = Credentials(username="builder", token="not-the-token-at-all")
    lines: list[str] = []
    with pytest.raises(GitError) as caught:
        fetch_commit(
            repo.http_url,
            bad,
            repo.head(),
            tmp_path / "c",
            timeout=60,
            on_line=lines.append,
            allow_local=True,
        )
    assert caught.value.kind == "auth"
    assert all("not-the-token-at-all" not in line for line in [*lines, str(caught.value)])

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "left-over").write_text("x")
    with pytest.raises(GitError) as caught:
        fetch_commit(
            repo.http_url, creds, repo.head(), tmp_path / "d", timeout=60, allow_local=True
        )
    assert "not empty" in str(caught.value)


def test_timeouts_kill_git(git_server: GitServer, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(GitError) as caught:
        ls_remote(git_server.silent_url, _creds(git_server), timeout=1.5, allow_local=True)
    assert caught.value.kind == "timeout"
    assert str(caught.value) == f"git ls-remote of {git_server.silent_url} took longer than 1.5 s"
    started_fetch = time.monotonic()
    assert started_fetch - started < 10
    with pytest.raises(GitError) as caught:
        fetch_commit(
            git_server.silent_url,
            _creds(git_server),
            "0" * 40,
            tmp_path / "w",
            timeout=1.5,
            allow_local=True,
        )
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started_fetch < 10


def _command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return lines


def test_no_credential_in_argv_and_no_process_left(git_server: GitServer) -> None:
    port = git_server.silent_url.split(":")[2].split("/")[0]
    errors: list[GitError] = []

    def hang() -> None:
        try:
            ls_remote(git_server.silent_url, _creds(git_server), timeout=4, allow_local=True)
        except GitError as exc:
            errors.append(exc)

    worker = threading.Thread(target=hang)
    worker.start()
    seen: list[str] = []
    deadline = time.monotonic() + 3
    while not seen and time.monotonic() < deadline:
        seen = [line for line in _command_lines() if f"127.0.0.1:{port}" in line]
        time.sleep(0.05)
    worker.join(timeout=30)
    assert seen, "git never ran against the silent server"
    assert all(git_server.token not in line for line in _command_lines() + seen)
    assert [e.kind for e in errors] == ["timeout"]
    assert not [line for line in _command_lines() if f"127.0.0.1:{port}" in line]


def test_ssh_key_stays_out_of_messages(git_server: GitServer, tmp_path: Path) -> None:
    url = f"ssh://git@127.0.0.1:{_closed_port()}/acme/app.git"
    lines: list[str] = []
    with pytest.raises(GitError) as caught:
        fetch_commit(
            url,
            Credentials(ssh_private_key=_KEY),
            "1" * 40,
            tmp_path / "w",
            timeout=30,
            on_line=lines.append,
            allow_local=True,
        )
    assert caught.value.kind == "unreachable"
    for text in [*lines, str(caught.value)]:
        assert "OPENSSH" not in text
        assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in text


def test_masker_hides_every_form() -> None:
    token = "ghp_R4nd0mT0k3nV4lu3+/=="
    mask = Masker(["", "ab", token, _KEY])
    basic = base64.b64encode(f"someone:{token}".encode()).decode()
    assert mask(f"token {token} here") == "token **** here"
    assert mask(f"https://x:{urllib.parse.quote(token, safe='')}@h/") == "https://x:****@h/"
    assert token not in mask(f"Authorization: Basic {basic}")
    assert basic not in mask(f"Authorization: Basic {basic}")
    assert mask(f"Authorization: Basic {basic}") == "Authorization: Basic ****"
    # base64 of the token inside some other encoded text, at each alignment
    for prefix in (b"", b"a", b"ab"):
        blob = base64.b64encode(prefix + token.encode() + b"tail").decode()
        masked = mask(f"data {blob}")
        assert "****" in masked
        assert base64.b64encode(token.encode()[3:12]).decode()[:8] not in masked
    assert mask("about abc") == "about abc"  # secrets too short to mask are left alone
    key_line = _KEY.splitlines()[1]
    assert mask(f"key: {key_line}") == "key: ****"
    assert Masker([])("nothing to hide") == "nothing to hide"


def test_credentials_repr_hides_values() -> None:
    creds = Credentials(username="u", token="secret-token-value", ssh_private_key=_KEY)
    assert "secret-token-value" not in repr(creds)
    assert "OPENSSH" not in repr(creds)
    assert "token" in repr(creds)
