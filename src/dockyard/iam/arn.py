"""Resource names: ``acs:cr:$regionid:$accountid:repository/$namespace[/$repository]``."""

from __future__ import annotations


def namespace_arn(region: str, account_id: int | str, namespace: str) -> str:
    return f"acs:cr:{region}:{account_id}:repository/{namespace}"


def repository_arn(region: str, account_id: int | str, namespace: str, repository: str) -> str:
    return f"acs:cr:{region}:{account_id}:repository/{namespace}/{repository}"


def instance_arn(region: str) -> str:
    return f"acs:cr:{region}::instance"


def ram_arn(account_id: int | str, kind: str, name: str) -> str:
    """``acs:ram::$account:user/$name`` (or ``group/``, ``role/``, ``policy/``)."""
    return f"acs:ram::{account_id}:{kind}/{name}"


def root_arn(account_id: int | str) -> str:
    """The identity of an account's root user, as trust policies name it."""
    return f"acs:ram::{account_id}:root"


def audit_arn(region: str, account_id: int | str) -> str:
    return f"acs:cr:{region}:{account_id}:audit"


def events_arn(region: str, account_id: int | str) -> str:
    return f"acs:cr:{region}:{account_id}:events"
