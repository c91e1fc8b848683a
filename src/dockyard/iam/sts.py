"""STS: temporary credentials for a RAM role (``AssumeRole``).

The caller must be allowed ``sts:AssumeRole`` on the role by its own account (a root
user always is) and be trusted by the role's trust policy, which names RAM users
(``acs:ram::$account:user/$name``) or whole accounts (``acs:ram::$account:root``: the
root and any identity of that account that its own policies let assume roles), of this
account or another. The credentials act with the role's attached policies in the role's
account, narrowed by an optional inline policy, until they expire.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dockyard.changes import Changes
from dockyard.db import tables as t
from dockyard.db.engine import Database, utcnow
from dockyard.errors import Forbidden, Invalid, NotFound
from dockyard.iam.arn import root_arn
from dockyard.iam.authz import Context, Principal, Resource, is_allowed
from dockyard.iam.passwords import hash_password
from dockyard.iam.policy import PolicyError, RequestFacts, parse_policy, trusts
from dockyard.origin import Origin

ROLE_ARN = re.compile(r"acs:ram::([0-9]{1,18}):role/([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
SESSION_NAME = re.compile(r"[A-Za-z0-9._@=,-]{2,64}")
MIN_DURATION = 900
DEFAULT_DURATION = 3600
KEY_PREFIX = "STS."
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class StsCredentials:
    access_key_id: str
    access_key_secret: str
    expires_at: datetime
    role_arn: str
    assumed_role_arn: str


def is_sts_key(access_key_id: str) -> bool:
    return access_key_id.startswith(KEY_PREFIX)


class StsService:
    def __init__(self, db: Database, changes: Changes) -> None:
        self.db = db
        self.changes = changes

    def assume_role(
        self,
        origin: Origin,
        caller: Principal,
        role_arn: str,
        session_name: str,
        duration: int | None = None,
        policy: Any = None,
        context: Context | None = None,
    ) -> StsCredentials:
        match = ROLE_ARN.fullmatch(role_arn) if isinstance(role_arn, str) else None
        if match is None:
            raise Invalid("role_arn must look like acs:ram::ACCOUNT_ID:role/NAME")
        if not isinstance(session_name, str) or not SESSION_NAME.fullmatch(session_name):
            raise Invalid(
                "role_session_name has 2 to 64 letters, digits and the characters . _ @ = , -"
            )
        session_policy = None
        if policy is not None:
            try:
                session_policy = parse_policy(policy)
            except PolicyError as exc:
                raise Invalid(f"the inline policy is invalid: {exc}") from exc
        if not is_allowed(caller, "sts:AssumeRole", Resource(role_arn), context):
            raise Forbidden(f"{caller.name} may not assume roles ({role_arn})")
        account_id, role_name = int(match.group(1)), match.group(2)
        with self.db.read() as conn:
            role = conn.execute(
                sa.select(t.roles).where(
                    t.roles.c.account_id == account_id, t.roles.c.name == role_name
                )
            ).first()
        if role is None:
            raise NotFound(f"role {role_arn} does not exist")
        duration = DEFAULT_DURATION if duration is None else duration
        if (
            not isinstance(duration, int)
            or isinstance(duration, bool)
            or not MIN_DURATION <= duration <= role.max_session_seconds
        ):
            raise Invalid(
                f"duration_seconds must be from {MIN_DURATION} to "
                f"{role.max_session_seconds} (the role's maximum session duration)"
            )
        caller_arns = [caller.arn]
        if caller.account_id is not None:
            caller_arns.append(root_arn(caller.account_id))
        facts = RequestFacts(
            source_ip=context.source_ip if context else None,
            secure_transport=context.secure_transport if context else False,
        )
        if not trusts(parse_policy(role.trust_policy, trust=True), caller_arns, facts):
            raise Forbidden(f"the trust policy of {role_arn} does not allow {caller.arn}")
        key_id = KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(28))
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + timedelta(seconds=duration)
        with self.changes.open(origin) as change:
            conn = change.conn
            conn.execute(sa.delete(t.sts_sessions).where(t.sts_sessions.c.expires_at < now))
            conn.execute(
                sa.insert(t.sts_sessions).values(
                    access_key_id=key_id,
                    secret_hash=hash_password(secret),
                    role_id=role.id,
                    session_name=session_name,
                    policy=None if session_policy is None else session_policy.document_json,
                    assumed_by=caller.arn,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return StsCredentials(
            access_key_id=key_id,
            access_key_secret=secret,
            expires_at=expires,
            role_arn=role_arn,
            assumed_role_arn=f"acs:ram::{account_id}:assumed-role/{role_name}/{session_name}",
        )
