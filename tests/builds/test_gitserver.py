"""The git test server itself: plain git clones over both protocols, auth enforced."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.fixtures.gitserver import GitServer, MakeRepo

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
