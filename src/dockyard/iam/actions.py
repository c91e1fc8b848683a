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
RAM_USER_ARN = "acs:ram::$accountid:user/$user"
RAM_POLICY_ARN = "acs:ram::$accountid:policy/$policy"
RAM_GROUP_ARN = "acs:ram::$accountid:group/$group"
RAM_ROLE_ARN = "acs:ram::$accountid:role/$role"
RAM_ANY_ARN = "acs:ram::$accountid:{user,group,role}/$name"
AUDIT_ARN = "acs:cr:$regionid:$accountid:audit"
EVENTS_ARN = "acs:cr:$regionid:$accountid:events"
INSTANCE_ARN = "acs:cr:$regionid::instance"
"""The instance itself: no account owns it, so only the instance administrator acts on it."""

CATALOGUE: tuple[Action, ...] = (
    Action(
        "cr:PullRepository",
        "registry pull (GET/HEAD of manifests, blobs, tags, referrers); "
        "GET /api/v1/repositories/{namespace}/{repository}/manifests/{reference}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:PushRepository", "registry push (blob uploads, manifest PUT, mounts)", REPOSITORY_ARN
    ),
    Action(
        "cr:DeleteRepositoryImage", "registry DELETE of manifests, tags and blobs", REPOSITORY_ARN
    ),
    Action("cr:CreateRepository", "creating a repository (also by a first push)", REPOSITORY_ARN),
    Action("cr:ListRepository", "registry _catalog; GET /api/v1/repositories", REPOSITORY_ARN),
    Action("cr:GetRepository", "GET /api/v1/repositories/{namespace}/{repository}", REPOSITORY_ARN),
    Action(
        "cr:UpdateRepository",
        "PATCH /api/v1/repositories/{namespace}/{repository} (type, summary, detail)",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:DeleteRepository",
        "DELETE /api/v1/repositories/{namespace}/{repository}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepositoryTag",
        "GET /api/v1/repositories/{namespace}/{repository}/tags",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepositoryTag",
        "GET /api/v1/repositories/{namespace}/{repository}/tags/{tag}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepositoryPermission",
        "GET …/permissions of a repository or namespace",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:SetRepositoryPermission",
        "PUT/DELETE …/permissions/{user-or-group} of a repository or namespace",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:CreateNamespace", "POST /api/v1/namespaces, `dockyard namespace create`", NAMESPACE_ARN
    ),
    Action("cr:ListNamespace", "GET /api/v1/namespaces", NAMESPACE_ARN),
    Action("cr:GetNamespace", "GET /api/v1/namespaces/{namespace}", NAMESPACE_ARN),
    Action(
        "cr:UpdateNamespace",
        "PATCH /api/v1/namespaces/{namespace} (auto-create, default type)",
        NAMESPACE_ARN,
    ),
    Action("cr:DeleteNamespace", "DELETE /api/v1/namespaces/{namespace}", NAMESPACE_ARN),
    Action("cr:ReadAuditLog", "GET /api/v1/audit", AUDIT_ARN),
    Action("cr:ListEvents", "GET /api/v1/events", EVENTS_ARN),
    Action(
        "cr:CreateRepoWebhook",
        "POST /api/v1/repositories/{namespace}/{repository}/webhooks",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepoWebhook",
        "GET /api/v1/repositories/{namespace}/{repository}/webhooks",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoWebhook",
        "GET /api/v1/repositories/{namespace}/{repository}/webhooks/{id} and its deliveries",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:UpdateRepoWebhook",
        "PATCH /api/v1/repositories/{namespace}/{repository}/webhooks/{id}; "
        "rotate-secret, test, redeliver",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:DeleteRepoWebhook",
        "DELETE /api/v1/repositories/{namespace}/{repository}/webhooks/{id}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:CreateNamespaceWebhook", "POST /api/v1/namespaces/{namespace}/webhooks", NAMESPACE_ARN
    ),
    Action("cr:ListNamespaceWebhook", "GET /api/v1/namespaces/{namespace}/webhooks", NAMESPACE_ARN),
    Action(
        "cr:GetNamespaceWebhook",
        "GET /api/v1/namespaces/{namespace}/webhooks/{id} and its deliveries",
        NAMESPACE_ARN,
    ),
    Action(
        "cr:UpdateNamespaceWebhook",
        "PATCH /api/v1/namespaces/{namespace}/webhooks/{id}; rotate-secret, test, redeliver",
        NAMESPACE_ARN,
    ),
    Action(
        "cr:DeleteNamespaceWebhook",
        "DELETE /api/v1/namespaces/{namespace}/webhooks/{id}",
        NAMESPACE_ARN,
    ),
    Action(
        "cr:GetRepoTagScanResult",
        "GET …/tags/{tag}/scan and …/manifests/{digest}/scan of a repository",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepoTagScanResult",
        "scan status and counts in GET /api/v1/repositories/{namespace}/{repository}/tags",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:StartRepoTagScan",
        "POST …/tags/{tag}/scan and …/manifests/{digest}/scan of a repository",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoSecuritySetting",
        "GET /api/v1/repositories/{namespace}/{repository}/security",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:UpdateRepoSecuritySetting",
        "PUT /api/v1/repositories/{namespace}/{repository}/security (scan on push override)",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetNamespaceSecuritySetting",
        "GET /api/v1/namespaces/{namespace}/security",
        NAMESPACE_ARN,
    ),
    Action(
        "cr:UpdateNamespaceSecuritySetting",
        "PUT /api/v1/namespaces/{namespace}/security (scan on push, pull blocking, allowlist)",
        NAMESPACE_ARN,
    ),
    Action(
        "cr:GetRepoSourceRepo",
        "GET /api/v1/repositories/{namespace}/{repository}/source and its hook-deliveries",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:UpdateRepoSourceRepo",
        "PUT /api/v1/repositories/{namespace}/{repository}/source; rotate-hook-secret",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:DeleteRepoSourceRepo",
        "DELETE /api/v1/repositories/{namespace}/{repository}/source",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepoSourceRefs",
        "POST /api/v1/repositories/{namespace}/{repository}/source/check (its branches, tags)",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:ListRepoBuildRule",
        "GET /api/v1/repositories/{namespace}/{repository}/build-rules",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoBuildRule",
        "GET /api/v1/repositories/{namespace}/{repository}/build-rules/{id}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:CreateRepoBuildRule",
        "POST /api/v1/repositories/{namespace}/{repository}/build-rules",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:UpdateRepoBuildRule",
        "PATCH /api/v1/repositories/{namespace}/{repository}/build-rules/{id}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:DeleteRepoBuildRule",
        "DELETE /api/v1/repositories/{namespace}/{repository}/build-rules/{id}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:StartRepoBuildByRule",
        "POST /api/v1/repositories/{namespace}/{repository}/build-rules/{id}/build (Build Now)",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoBuildList",
        "GET /api/v1/repositories/{namespace}/{repository}/builds",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoBuildRecord",
        "GET /api/v1/repositories/{namespace}/{repository}/builds/{id}",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:GetRepoBuildLogs",
        "GET /api/v1/repositories/{namespace}/{repository}/builds/{id}/log",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:CancelRepoBuild",
        "POST /api/v1/repositories/{namespace}/{repository}/builds/{id}/cancel",
        REPOSITORY_ARN,
    ),
    Action(
        "cr:TriggerRepoBuildByHook",
        "POST /api/v1/hooks/git/{hook_id} (recorded: the hook secret signs it, no login)",
        REPOSITORY_ARN,
    ),
    Action("ram:CreateUser", "POST /api/v1/ram/users", RAM_USER_ARN),
    Action("ram:ListUsers", "GET /api/v1/ram/users", RAM_USER_ARN),
    Action("ram:GetUser", "GET /api/v1/ram/users/{user}", RAM_USER_ARN),
    Action(
        "ram:UpdateUser",
        "PATCH /api/v1/ram/users/{user} (console password), PUT …/registry-password",
        RAM_USER_ARN,
    ),
    Action("ram:DeleteUser", "DELETE /api/v1/ram/users/{user}", RAM_USER_ARN),
    Action("ram:CreateAccessKey", "POST /api/v1/ram/users/{user}/access-keys", RAM_USER_ARN),
    Action("ram:ListAccessKeys", "GET /api/v1/ram/users/{user}/access-keys", RAM_USER_ARN),
    Action(
        "ram:DeleteAccessKey", "DELETE /api/v1/ram/users/{user}/access-keys/{key}", RAM_USER_ARN
    ),
    Action("ram:CreateGroup", "POST /api/v1/ram/groups", RAM_GROUP_ARN),
    Action("ram:ListGroups", "GET /api/v1/ram/groups", RAM_GROUP_ARN),
    Action("ram:GetGroup", "GET /api/v1/ram/groups/{group}", RAM_GROUP_ARN),
    Action("ram:DeleteGroup", "DELETE /api/v1/ram/groups/{group}", RAM_GROUP_ARN),
    Action("ram:AddUserToGroup", "PUT /api/v1/ram/groups/{group}/members/{user}", RAM_GROUP_ARN),
    Action(
        "ram:RemoveUserFromGroup",
        "DELETE /api/v1/ram/groups/{group}/members/{user}",
        RAM_GROUP_ARN,
    ),
    Action("ram:CreateRole", "POST /api/v1/ram/roles", RAM_ROLE_ARN),
    Action("ram:ListRoles", "GET /api/v1/ram/roles", RAM_ROLE_ARN),
    Action("ram:GetRole", "GET /api/v1/ram/roles/{role}", RAM_ROLE_ARN),
    Action("ram:UpdateRole", "PATCH /api/v1/ram/roles/{role} (trust policy)", RAM_ROLE_ARN),
    Action("ram:DeleteRole", "DELETE /api/v1/ram/roles/{role}", RAM_ROLE_ARN),
    Action(
        "ram:AttachPolicy",
        "PUT /api/v1/ram/{users,groups,roles}/{name}/policies/{policy}",
        RAM_ANY_ARN,
    ),
    Action(
        "ram:DetachPolicy",
        "DELETE /api/v1/ram/{users,groups,roles}/{name}/policies/{policy}",
        RAM_ANY_ARN,
    ),
    Action("ram:CreatePolicy", "POST /api/v1/ram/policies", RAM_POLICY_ARN),
    Action("ram:ListPolicies", "GET /api/v1/ram/policies", RAM_POLICY_ARN),
    Action("ram:GetPolicy", "GET /api/v1/ram/policies/{policy} and its versions", RAM_POLICY_ARN),
    Action("ram:UpdatePolicy", "PUT /api/v1/ram/policies/{policy} (a new version)", RAM_POLICY_ARN),
    Action("ram:DeletePolicy", "DELETE /api/v1/ram/policies/{policy}", RAM_POLICY_ARN),
    Action(
        "sts:AssumeRole",
        "POST /api/v1/sts/assume-role (also needs the role's trust policy to allow the caller)",
        RAM_ROLE_ARN,
    ),
    Action("cr:CreateAccount", "POST /api/v1/accounts, `dockyard account create`", INSTANCE_ARN),
    Action("cr:ListAccount", "GET /api/v1/accounts", INSTANCE_ARN),
    Action("cr:UpdateAccount", "PATCH /api/v1/accounts/{account} (quotas)", INSTANCE_ARN),
    Action("cr:ListJobs", "GET /api/v1/jobs", INSTANCE_ARN),
    Action("cr:RetryJob", "POST /api/v1/jobs/{id}/retry", INSTANCE_ARN),
    Action(
        "cr:GetVulnDB",
        "GET /api/v1/vulndb (status), GET /api/v1/vulndb/imports and /imports/{id}",
        INSTANCE_ARN,
    ),
    Action(
        "cr:ImportVulnDB", "POST /api/v1/vulndb/imports (upload OSV data to import)", INSTANCE_ARN
    ),
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
LIST_EVENTS = "cr:ListEvents"
LIST_JOBS = "cr:ListJobs"
RETRY_JOB = "cr:RetryJob"
GET_SCAN = "cr:GetRepoTagScanResult"
LIST_SCAN = "cr:ListRepoTagScanResult"
START_SCAN = "cr:StartRepoTagScan"
GET_REPO_SECURITY = "cr:GetRepoSecuritySetting"
UPDATE_REPO_SECURITY = "cr:UpdateRepoSecuritySetting"
GET_NS_SECURITY = "cr:GetNamespaceSecuritySetting"
UPDATE_NS_SECURITY = "cr:UpdateNamespaceSecuritySetting"
GET_VULNDB = "cr:GetVulnDB"
IMPORT_VULNDB = "cr:ImportVulnDB"

LIST_PERMISSIONS = "cr:ListRepositoryPermission"
SET_PERMISSIONS = "cr:SetRepositoryPermission"

NAMESPACE_ACTIONS = (
    *(a.name for a in CATALOGUE if a.resource == NAMESPACE_ARN),
    LIST_PERMISSIONS,
    SET_PERMISSIONS,
)
"""What a namespace's ``allowed_actions`` may name: the actions on the namespace itself,
and its permissions (checked on the namespace's ARN, as the routes do)."""
NAMESPACE_CHILD_ACTIONS = (CREATE_REPOSITORY,)
"""Repository actions a namespace's ``allowed_actions`` also answers, for a repository
of any name in it (its ARN ``…/$namespace/*``): may the caller create repositories
there."""
REPOSITORY_ACTIONS = tuple(a.name for a in CATALOGUE if a.resource == REPOSITORY_ARN)
"""What a repository's ``allowed_actions`` may name: every action on a repository."""

SCOPE_ACTIONS = {"pull": PULL, "push": PUSH, "delete": DELETE}
"""Docker token scope action → catalogue action."""


def markdown_table() -> str:
    """The catalogue as the README shows it (a test keeps the two the same)."""
    rows = ["| action | guards | resource |", "| --- | --- | --- |"]
    rows += [f"| `{a.name}` | {a.guards} | `{a.resource}` |" for a in CATALOGUE]
    return "\n".join(rows)
