"""The catalogue of ``cr:`` actions: every action, what it guards, its resource form.

This is the one place actions are named. The registry's token scopes map onto it
(``pull`` → ``cr:PullRepository``, ``push`` → ``cr:PushRepository``, ``delete`` →
``cr:DeleteRepositoryImage``), and the management API names the action each route needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    guards: str
    resource: str


NAMESPACE_ARN = "acs:cr:$regionid:$accountid:repository/$namespace"
REPOSITORY_ARN = "acs:cr:$regionid:$accountid:repository/$namespace/$repository"
RAM_USER_ARN = "acs:ram:*:$accountid:user/$user"
RAM_POLICY_ARN = "acs:ram:*:$accountid:policy/$policy"
INSTANCE_ARN = "acs:cr:$regionid::instance"
"""The instance itself: no account owns it, so only the instance administrator acts on it."""

CATALOGUE: tuple[Action, ...] = (
    Action(
        "cr:PullRepository",
        "registry pull (GET/HEAD of manifests, blobs, tags, referrers)",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:PushRepository", "registry push (blob uploads, manifest PUT, mounts)", REPOSITORY_ARN
    ),
    Action(
        "cr:DeleteRepositoryImage", "registry DELETE of manifests, tags and blobs", REPOSITORY_ARN
    ),
    Action("cr:CreateRepository", "creating a repository (also by a first push)", REPOSITORY_ARN),
    Action("cr:ListRepository", "registry _catalog; listing repositories", REPOSITORY_ARN),
    Action("cr:GetRepository", "reading a repository's settings", REPOSITORY_ARN),
    Action(
        "cr:CreateNamespace", "POST /api/v1/namespaces, `dockyard namespace create`", NAMESPACE_ARN
    ),
    Action("cr:ListNamespace", "GET /api/v1/namespaces", NAMESPACE_ARN),
    Action("cr:GetNamespace", "GET /api/v1/namespaces/{namespace}", NAMESPACE_ARN),
    Action("cr:DeleteNamespace", "DELETE /api/v1/namespaces/{namespace}", NAMESPACE_ARN),
    Action("ram:CreateUser", "POST /api/v1/ram/users", RAM_USER_ARN),
    Action("ram:ListUsers", "GET /api/v1/ram/users", RAM_USER_ARN),
    Action("ram:UpdateUser", "PUT /api/v1/ram/users/{user}/registry-password", RAM_USER_ARN),
    Action("ram:AttachPolicy", "PUT /api/v1/ram/users/{user}/policies/{policy}", RAM_USER_ARN),
    Action("ram:DetachPolicy", "DELETE /api/v1/ram/users/{user}/policies/{policy}", RAM_USER_ARN),
    Action("ram:CreateAccessKey", "POST /api/v1/ram/users/{user}/access-keys", RAM_USER_ARN),
    Action("ram:ListAccessKeys", "GET /api/v1/ram/users/{user}/access-keys", RAM_USER_ARN),
    Action(
        "ram:DeleteAccessKey", "DELETE /api/v1/ram/users/{user}/access-keys/{key}", RAM_USER_ARN
    ),
    Action("ram:CreatePolicy", "POST /api/v1/ram/policies", RAM_POLICY_ARN),
    Action("ram:ListPolicies", "GET /api/v1/ram/policies", RAM_POLICY_ARN),
    Action("ram:GetPolicy", "GET /api/v1/ram/policies/{policy}", RAM_POLICY_ARN),
    Action("ram:UpdatePolicy", "PUT /api/v1/ram/policies/{policy}", RAM_POLICY_ARN),
    Action("ram:DeletePolicy", "DELETE /api/v1/ram/policies/{policy}", RAM_POLICY_ARN),
    Action("cr:CreateAccount", "POST /api/v1/accounts, `dockyard account create`", INSTANCE_ARN),
    Action("cr:ListAccount", "GET /api/v1/accounts", INSTANCE_ARN),
    Action("cr:UpdateAccount", "PATCH /api/v1/accounts/{account} (quotas)", INSTANCE_ARN),
)

BY_NAME = {a.name: a for a in CATALOGUE}
PULL = "cr:PullRepository"
PUSH = "cr:PushRepository"
DELETE = "cr:DeleteRepositoryImage"
CREATE_REPOSITORY = "cr:CreateRepository"
LIST_REPOSITORY = "cr:ListRepository"
CREATE_NAMESPACE = "cr:CreateNamespace"
CREATE_ACCOUNT = "cr:CreateAccount"
LIST_ACCOUNT = "cr:ListAccount"
UPDATE_ACCOUNT = "cr:UpdateAccount"

SCOPE_ACTIONS = {"pull": PULL, "push": PUSH, "delete": DELETE}
"""Docker token scope action → catalogue action."""


def markdown_table() -> str:
    """The catalogue as the README shows it (a test keeps the two the same)."""
    rows = ["| action | guards | resource |", "| --- | --- | --- |"]
    rows += [f"| `{a.name}` | {a.guards} | `{a.resource}` |" for a in CATALOGUE]
    return "\n".join(rows)
