"""The build runner: the ``builds.run`` job.

One build, in a throwaway work folder outside the data folder: fetch the exact commit
(shallow), ``buildah bud`` it (chroot isolation, the vfs driver, a per-repository storage
root whose layers are the cache, unless the source says to build without cache), then
push every tag through Dockyard's own registry over loopback with a token for that one
repository (actor ``build:<id>``), so the push makes the events, webhooks and audit
records any push makes. ``FROM`` images in this Dockyard are pulled with a temporary
login of the repository account's root user, through an auth file that names only this
registry.

Every output line goes to the build's log, masked (credentials, rule secrets, the
tokens). A watcher stops the build (its whole process group) when it is canceled or runs
out of time. A worker that dies mid-build leaves the build running in the table: the
job's lease runs out, the job is claimed again, and the next attempt starts the build
once more — or, when it already did, ends it ``failed`` ("worker lost").
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from anyio import to_thread

from dockyard.builds import git
from dockyard.builds.model import (
    BUILDING,
    CANCELED,
    CLONING,
    FAILED,
    FINAL,
    LOG_LIMIT,
    PENDING,
    PUSHING,
    RUNNING,
    SUCCESS,
    TIMED_OUT,
)
from dockyard.builds.rules import RuleError, RuleSpec, locate
from dockyard.builds.service import BuildService, Repo, build_job, repo_by_id
from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.jobs.queue import Job
from dockyard.jobs.worker import Fail, Handler
from dockyard.origin import Origin

if TYPE_CHECKING:
    # At run time the token service (and PyJWT) is loaded by the first build, not by
    # every job worker.
    from dockyard.iam.tokens import TokenService

log = logging.getLogger(__name__)

_B = t.builds.c
_L = t.build_log_lines.c
FLUSH_INTERVAL = 0.2
"""Seconds between two writes of new log lines (what a follower waits at most, plus
its own poll)."""
WATCH_INTERVAL = 0.5
KILL_GRACE = 3.0
CACHE_IMAGE = "localhost/dockyard-build-cache:latest"
LOST = "worker lost: the worker running this build stopped"


class _Stopped(Exception):
    """The build was canceled or ran out of time (``status`` says which)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Failed(Exception):
    """The build failed; the message is its one-line error."""


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    registry: str
    """HOST:PORT of this Dockyard's registry, reached over loopback."""
    registry_tls: bool
    work_dir: Path
    cache_dir: Path
    data_dir: Path
    timeout: float
    allow_local: bool
    context_limit: int = 1024 * 1024 * 1024
    """Bytes a build context may hold."""
    log_limit: int = LOG_LIMIT


class LogSink:
    """A build's log: lines masked, numbered and written in small batches by a
    background thread (a follower sees a line within ``FLUSH_INTERVAL`` plus its poll),
    bounded at ``limit`` bytes with one truncation note."""

    def __init__(
        self,
        db: Database,
        build_id: int,
        masker: Callable[[str], str],
        *,
        start_line: int,
        start_bytes: int,
        limit: int,
    ) -> None:
        self.db = db
        self.build_id = build_id
        self.masker = masker
        self.line = start_line
        self.bytes = start_bytes
        self.limit = limit
        self.stage = CLONING
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._truncated = start_bytes >= limit
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"build-{build_id}-log", daemon=True
        )
        self._thread.start()

    def write(self, text: str) -> None:
        for part in text.replace("\r\n", "\n").split("\n"):
            if part.strip() == "" and not part:
                continue
            self._add(self.masker(part.rstrip("\r"))[:8192])

    def _add(self, text: str) -> None:
        with self._lock:
            if self._truncated:
                return
            size = len(text.encode()) + 1
            if self.bytes + size > self.limit:
                self._truncated = True
                text = (
                    f"[the log reached {self.limit // (1024 * 1024)} MiB: later lines are not kept]"
                )
                size = len(text) + 1
            self.line += 1
            self.bytes += size
            self._pending.append(
                {
                    "build_id": self.build_id,
                    "line": self.line,
                    "stage": self.stage,
                    "at": utcnow(),
                    "text": text,
                }
            )

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            lines, size = self.line, self.bytes
        if not batch:
            return
        with self.db.write(durable=False) as conn:
            conn.execute(sa.insert(t.build_log_lines), batch)
            conn.execute(
                sa.update(t.builds)
                .where(_B.id == self.build_id)
                .values(log_lines=lines, log_bytes=size)
            )

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:
                log.exception("could not write the log of build %s", self.build_id)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


class _Watch:
    """Stops the build's current process when it is canceled or times out."""

    def __init__(self, db: Database, build_id: int, deadline: float) -> None:
        self.db = db
        self.build_id = build_id
        self.deadline = deadline
        self.stopped: _Stopped | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"build-{build_id}-watch", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(WATCH_INTERVAL):
            if self.stopped is None:
                self.stopped = self._check()
            if self.stopped is not None:
                self._kill()

    def _check(self) -> _Stopped | None:
        if time.monotonic() > self.deadline:
            return _Stopped(TIMED_OUT, "the build ran out of time (DOCKYARD_BUILD_TIMEOUT)")
        try:
            with self.db.read() as conn:
                asked = conn.execute(
                    sa.select(_B.cancel_requested).where(_B.id == self.build_id)
                ).scalar()
        except Exception:
            log.exception("could not look whether build %s is canceled", self.build_id)
            return None
        if asked is None or asked:
            return _Stopped(CANCELED, "canceled")
        return None

    def _kill(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def check(self) -> None:
        """Raise when the build must stop (between stages)."""
        if self.stopped is None:
            self.stopped = self._check()
        if self.stopped is not None:
            raise self.stopped

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 1.0)

    def close(self) -> None:
        self._done.set()
        self._thread.join()


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks resolved) is ``root`` or lies under it."""
    return path.resolve().is_relative_to(root.resolve())


def context_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links counted as links, never followed; the
    repository's own ``.git`` left out)."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not (Path(root) == folder and d == ".git")]
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def check_folders(config: RunnerConfig) -> None:
    """Work and cache folders must lie outside the data folder: nothing from a build
    context may reach the server's data."""
    for what, folder in (("work", config.work_dir), ("cache", config.cache_dir)):
        if inside(folder, config.data_dir) or inside(config.data_dir, folder):
            raise ValueError(
                f"the build {what} folder {folder} must lie outside the data folder "
                f"{config.data_dir}"
            )


class _Run:
    """One attempt at a build: what its stages share."""

    def __init__(
        self,
        row: Any,
        source: Any,
        repo: Repo,
        creds: git.Credentials | None,
        secrets: dict[str, str],
        work: Path,
        sink: LogSink,
        watch: _Watch,
        push_token: str,
        login: str,
    ) -> None:
        self.row = row
        self.id = int(row.id)
        self.source = source
        self.repo = repo
        self.creds = creds
        self.secrets = secrets
        self.work = work
        self.src = work / "src"
        self.sink = sink
        self.watch = watch
        self.push_token = push_token
        self.login = login
        self.env: dict[str, str] = {}
        self.image = f"localhost/dockyard-build-{self.id}:latest"
        self.storage = work / "storage" if source.build_without_cache else Path()

    def use_storage(self, cache_dir: Path) -> None:
        if not self.source.build_without_cache:
            self.storage = cache_dir / f"repository-{self.repo.id}"

    @property
    def root(self) -> Path:
        return self.storage / "root"

    @property
    def runroot(self) -> Path:
        return self.storage / "run"

    @property
    def store(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]


class BuildRunner:
    def __init__(
        self,
        db: Database,
        changes: Changes,
        builds: BuildService,
        tokens: Callable[[], TokenService],
        config: RunnerConfig,
    ) -> None:
        self.db = db
        self.changes = changes
        self.builds = builds
        self.tokens = tokens
        self.config = config

    def handler(self, pool: str, account_limit: int) -> Handler:
        async def run(job: Job, owner: str) -> str | None:
            await to_thread.run_sync(self.run, int(job.payload["build_id"]), owner)
            return None

        return Handler(build_job(pool, account_limit), run)

    # -- one build -----------------------------------------------------------------------

    def _start(self, build_id: int, owner: str) -> tuple[Any, Any, Repo] | None:
        """Take the build for this attempt: (build, source, repository), or None when
        there is nothing (left) to do."""
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.builds).where(_B.id == build_id)).first()
            if row is None:
                raise Fail(f"build {build_id} no longer exists")
            if row.status in FINAL:
                return None
            repo = repo_by_id(conn, row.repository_id)
            source = conn.execute(
                sa.select(t.code_sources).where(t.code_sources.c.repository_id == repo.id)
            ).first()
        if row.cancel_requested:
            self._finish(build_id, repo, CANCELED, "canceled before it started")
            return None
        if source is None:
            self._finish(build_id, repo, FAILED, "the repository no longer has a code source")
            return None
        if row.status in RUNNING and row.attempts >= 2:
            self._finish(build_id, repo, FAILED, LOST)
            return None
        values: dict[str, Any] = {
            "status": CLONING,
            "worker": owner[:128],
            "attempts": _B.attempts + 1,
            "started_at": utcnow(),
            "built_at": None,
            "pushed_at": None,
            "error": "",
        }
        with self.db.write() as conn:
            conn.execute(sa.update(t.builds).where(_B.id == build_id).values(**values))
            row = conn.execute(sa.select(t.builds).where(_B.id == build_id)).one()
        return row, source, repo

    def run(self, build_id: int, owner: str) -> None:
        started = self._start(build_id, owner)
        if started is None:
            return
        row, source, repo = started
        creds = self.builds.credentials_of(source)
        with self.db.read() as conn:
            rule_secrets = self.builds.rule_secrets(conn, row.rule_id)
        push_token = self._push_token(build_id, repo)
        login = self._login_token(repo)
        hidden = [v for v in rule_secrets.values() if v] + [push_token, login]
        if creds is not None:
            hidden += [s for s in (creds.token, creds.ssh_private_key) if s]
        masker = git.Masker(hidden)
        sink = LogSink(
            self.db,
            build_id,
            masker,
            start_line=int(row.log_lines),
            start_bytes=int(row.log_bytes),
            limit=self.config.log_limit,
        )
        if row.attempts > 1:
            sink.write(f"[{LOST}; building again]")
        watch = _Watch(self.db, build_id, time.monotonic() + self.config.timeout)
        self.config.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in self.config.work_dir.glob(f"build-{build_id}-*"):
            # An earlier attempt's, on this machine, whose worker died mid-build.
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f"build-{build_id}-", dir=self.config.work_dir))
        run = _Run(row, source, repo, creds, rule_secrets, work, sink, watch, push_token, login)
        run.use_storage(self.config.cache_dir)
        status, error, digest = SUCCESS, "", ""
        try:
            self._clone(run)
            self._build(run)
            digest = self._push(run)
        except _Stopped as exc:
            status, error = exc.status, str(exc)
        except _Failed as exc:
            status, error = FAILED, str(exc)
        except Exception as exc:
            log.exception("build %s failed unexpectedly", build_id)
            status, error = FAILED, masker(f"{type(exc).__name__}: {exc}")
        finally:
            watch.close()
            shutil.rmtree(work, ignore_errors=True)
        if status != SUCCESS:
            sink.write(f"[{status}] {error}")
        else:
            sink.write(f"[success] pushed {digest}")
        sink.stage = "done"
        sink.close()
        self._finish(
            build_id, repo, status, masker(error).splitlines()[0][:1024] if error else "", digest
        )

    def _stage(self, run: _Run, status: str, **times: Any) -> None:
        run.sink.stage = status
        with self.db.write() as conn:
            conn.execute(sa.update(t.builds).where(_B.id == run.id).values(status=status, **times))

    def _clone(self, run: _Run) -> None:
        """Fetch exactly the build's commit (shallow) into the work folder."""
        run.sink.write(f"fetching {run.source.url} at {run.row.commit_sha}")
        try:
            subject = git.fetch_commit(
                run.source.url,
                run.creds,
                run.row.commit_sha,
                run.src,
                timeout=min(run.watch.remaining(), 600.0),
                on_line=run.sink.write,
                allow_local=self.config.allow_local,
            )
        except git.GitError as exc:
            run.watch.check()
            raise _Failed(f"could not fetch the commit: {exc}") from exc
        run.watch.check()
        self._stage(run, BUILDING, commit_subject=subject[:1024], built_at=utcnow())

    def _build(self, run: _Run) -> None:
        """``buildah bud`` the rule's Dockerfile in its directory (the context)."""
        spec = json.loads(run.row.spec)
        where = RuleSpec(
            dockerfile_dir=str(spec["dockerfile_dir"]), dockerfile_name=str(spec["dockerfile_name"])
        )
        try:
            context, dockerfile = locate(run.src, where)
        except RuleError as exc:
            raise _Failed(f"{exc} (commit {run.row.commit_sha[:12]})") from exc
        size = context_size(context)
        if size > self.config.context_limit:
            raise _Failed(
                f"the build context {spec['dockerfile_dir']} holds {size // (1024 * 1024)} MiB, "
                f"more than the {self.config.context_limit // (1024 * 1024)} MiB allowed "
                "(DOCKYARD_BUILD_CONTEXT_LIMIT)"
            )
        run.env = self._environment(run.work, run.login)
        command = ["buildah", *run.store, "bud", "--isolation", "chroot"]
        if run.source.build_without_cache:
            command += ["--no-cache", "--pull-always"]
        else:
            command += ["--layers"]
        command += ["-f", str(dockerfile), "-t", run.image]
        if not run.source.build_without_cache:
            # A name that stays: removing the build's own name after the push then
            # keeps the image's layers, which are the next build's cache.
            command += ["-t", CACHE_IMAGE]
        command += ["--label", f"org.opencontainers.image.revision={run.row.commit_sha}"]
        command += ["--label", f"org.opencontainers.image.source={run.source.url}"]
        for key, value in dict(spec.get("build_args", {})).items():
            command += ["--build-arg", f"{key}={value}"]
        if run.secrets:
            folder = run.work / "secrets"
            folder.mkdir(mode=0o700)
            for key, value in run.secrets.items():
                path = folder / key
                path.write_text(value)
                path.chmod(0o600)
                command += ["--secret", f"id={key},src={path}"]
        command.append(str(context))
        code = self._run(command, run)
        if code != 0:
            raise _Failed(f"buildah bud failed (exit status {code}); see the log")

    def _push(self, run: _Run) -> str:
        """Push the first tag from the build's storage, then point the other tags at
        the same manifest; the pushed digest."""
        self._stage(run, PUSHING, pushed_at=utcnow())
        target = f"{self.config.registry}/{run.repo.name}"
        tls = "true" if self.config.registry_tls else "false"
        digest_file = run.work / "digest"
        stored = f"containers-storage:[vfs@{run.root}+{run.runroot}]{run.image}"
        first, *others = json.loads(run.row.image_tags)
        run.sink.write(f"pushing {target}:{first}")
        copy = ["skopeo", "copy", "--retry-times", "2", f"--dest-tls-verify={tls}"]
        copy += ["--dest-registry-token", run.push_token]
        code = self._run(
            [*copy, "--digestfile", str(digest_file), stored, f"docker://{target}:{first}"], run
        )
        if code != 0:
            raise _Failed(f"pushing {run.repo.name}:{first} failed (exit status {code})")
        digest = digest_file.read_text().strip()
        for tag in others:
            run.sink.write(f"tagging {target}:{tag}")
            source = ["--src-tls-verify=" + tls, "--src-registry-token", run.push_token]
            code = self._run(
                [*copy, *source, f"docker://{target}@{digest}", f"docker://{target}:{tag}"], run
            )
            if code != 0:
                raise _Failed(f"pushing {run.repo.name}:{tag} failed (exit status {code})")
        if not run.source.build_without_cache:
            # Only the build's name goes: the image keeps CACHE_IMAGE, so its layers
            # stay as the cache.
            subprocess.run(
                ["buildah", *run.store, "rmi", run.image],
                env=run.env,
                capture_output=True,
                check=False,
                timeout=120,
            )
        return digest

    def _environment(self, work: Path, login: str) -> dict[str, str]:
        """What buildah and skopeo see: a home, temp folder, registries.conf and auth
        file of their own in the work folder (nothing from the server's environment)."""
        for name in ("home", "tmp"):
            (work / name).mkdir(mode=0o700)
        registries = work / "registries.conf"
        lines = ["unqualified-search-registries = []", ""]
        if not self.config.registry_tls:
            lines += ["[[registry]]", f'location = "{self.config.registry}"', "insecure = true"]
        registries.write_text("\n".join(lines) + "\n")
        from dockyard.iam.tokens import TEMP_USER

        auth = work / "auth.json"
        basic = base64.b64encode(f"{TEMP_USER}:{login}".encode()).decode()
        auth.write_text(json.dumps({"auths": {self.config.registry: {"auth": basic}}}))
        auth.chmod(0o600)
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(work / "home"),
            "TMPDIR": str(work / "tmp"),
            "LANG": "C.UTF-8",
            "CONTAINERS_REGISTRIES_CONF": str(registries),
            "REGISTRY_AUTH_FILE": str(auth),
            "BUILDAH_ISOLATION": "chroot",
            "STORAGE_DRIVER": "vfs",
        }

    @staticmethod
    def _run(command: Sequence[str], run: _Run) -> int:
        """Run ``command`` in a process group of its own, every output line to the log;
        its exit status (raises when the build was stopped meanwhile)."""
        run.watch.check()
        proc = subprocess.Popen(
            list(command),
            env=run.env,
            cwd=run.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        run.watch.proc = proc
        out: IO[bytes] | None = proc.stdout
        assert out is not None
        try:
            for raw in out:
                run.sink.write(raw.decode("utf-8", "replace").rstrip("\n"))
            code = proc.wait()
        finally:
            run.watch.proc = None
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        run.watch.check()
        return code

    # -- tokens ----------------------------------------------------------------------

    def _push_token(self, build_id: int, repo: Repo) -> str:
        """A registry token for pull and push on the build's repository alone."""
        from dockyard.iam.tokens import Grant

        grant = Grant("repository", str(repo.name), ("pull", "push"))
        ttl = int(self.config.timeout) + 600
        token, _, _ = self.tokens().issue(f"build:{build_id}", [grant], ttl=ttl)
        return token

    def _login_token(self, repo: Repo) -> str:
        """A temporary registry login of the repository account's root user (the
        instance administrator for a namespace no account owns): ``FROM`` images in
        this Dockyard are pulled with the account's rights."""
        with self.db.read() as conn:
            q = sa.select(t.users.c.name)
            if repo.account_id is not None:
                q = q.where(t.users.c.account_id == repo.account_id, t.users.c.is_root)
            else:
                q = q.where(t.users.c.is_admin)
            user = conn.execute(q.order_by(t.users.c.id).limit(1)).scalar()
        tokens = self.tokens()
        ttl = int(self.config.timeout) + 600
        token, _, _ = tokens.issue(user or "", audience=tokens.login_audience, ttl=ttl)
        return token

    # -- the end -----------------------------------------------------------------------

    def _finish(
        self, build_id: int, repo: Repo, status: str, error: str = "", digest: str = ""
    ) -> None:
        """Record how the build ended, with its ``build_completed`` event (actor
        ``build:<id>``), in one transaction; a build that has ended already stays as
        it is."""
        origin = Origin(actor=f"build:{build_id}", account_id=repo.account_id)
        with self.changes.open(origin) as change:
            done = change.conn.execute(
                sa.update(t.builds)
                .where(_B.id == build_id, _B.status.not_in(FINAL))
                .values(status=status, error=error[:1024], digest=digest, finished_at=utcnow())
            )
            if done.rowcount:
                self.builds.emit_completed(change, repo, build_id)


__all__ = ["PENDING", "BuildRunner", "LogSink", "RunnerConfig", "check_folders"]
