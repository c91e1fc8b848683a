"""Resource names: ``acs:cr:$regionid:$accountid:repository/$namespace[/$repository]``."""

from __future__ import annotations


def namespace_arn(region: str, account_id: int | str, namespace: str) -> str:
    return f"acs:cr:{region}:{account_id}:repository/{namespace}"


def repository_arn(region: str, account_id: int | str, namespace: str, repository: str) -> str:
    return f"acs:cr:{region}:{account_id}:repository/{namespace}/{repository}"


def instance_arn(region: str) -> str:
    return f"acs:cr:{region}::instance"


def ram_arn(account_id: int | str, kind: str, name: str) -> str:
    """``acs:ram:*:$account:user/$name`` or ``…:policy/$name``."""
    return f"acs:ram:*:{account_id}:{kind}/{name}"
