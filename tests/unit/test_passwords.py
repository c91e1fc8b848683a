"""The verification cache: one argon2 run per credential under a stampede, and a bound
on argon2 runs at once (each takes its hash's memory cost); the parameters of new
hashes, and hashes made with other ones still verifying."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError

from dockyard.iam import passwords


class CountingHasher:
    def __init__(self) -> None:
        self.runs = 0
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.runs += 1
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        if password != "right":
            raise VerifyMismatchError
        return True


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    fake = CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", fake)
    monkeypatch.setattr(passwords, "_cache", {})
    return fake


def test_a_stampede_on_one_credential_runs_argon2_once(hasher: CountingHasher) -> None:
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: passwords.verify_password("h1", "right"), range(64)))
    assert all(results)
    assert hasher.runs == 1
    # Remembered now: no more runs.
    assert passwords.verify_password("h1", "right")
    assert hasher.runs == 1


def test_wrong_passwords_are_not_remembered_and_runs_are_bounded(hasher: CountingHasher) -> None:
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: passwords.verify_password(f"h{n}", "wrong"), range(16)))
    assert not any(results)
    assert hasher.runs == 16
    assert hasher.most <= passwords.MAX_PARALLEL
    assert not passwords.verify_password("h0", "wrong")
    assert hasher.runs == 17


def test_a_changed_hash_is_checked_again(hasher: CountingHasher) -> None:
    assert passwords.verify_password("old-hash", "right")
    assert passwords.verify_password("new-hash", "right")
    assert hasher.runs == 2


def test_new_hashes_take_an_owasp_argon2id_configuration() -> None:
    params = extract_parameters(passwords.hash_password("a password"))
    assert (params.type.name, params.time_cost, params.memory_cost, params.parallelism) == (
        "ID",
        5,
        7 * 1024,
        1,
    )


@pytest.mark.parametrize(
    ("time_cost", "memory_cost", "parallelism"),
    [(3, 64 * 1024, 4), (2, 19 * 1024, 1)],
    ids=["argon2-cffi's default", "19 MiB and two passes"],
)
def test_hashes_made_with_the_former_parameters_still_verify(
    monkeypatch: pytest.MonkeyPatch, time_cost: int, memory_cost: int, parallelism: int
) -> None:
    """Hashes stored by earlier versions: argon2-cffi's default (64 MiB, t=3, p=4), then
    OWASP's 19 MiB and two passes."""
    monkeypatch.setattr(passwords, "_cache", {})
    stored = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
    ).hash("old one")
    assert passwords.verify_password(stored, "old one")
    assert not passwords.verify_password(stored, "not it")
