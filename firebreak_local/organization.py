"""The emulated organization: the security account's moto Organization, its member accounts and their member stack,
and sts:AssumeRole answered as AWS answers it.

moto hands out credentials for any role ARN: the role need not exist, its trust policy is never read and
aws:PrincipalOrgID never checked. So an AssumeRole a handler makes is checked here first, against the target role's
trust policy and the caller's identity (the function's execution role), and refused with STS's own AccessDenied.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.iam.models import get_account_id_from, iam_backends
from moto.organizations import utils as organizations_utils
from moto.organizations.models import FakeAccount, organizations_backends
from moto.sts.models import sts_backends

from firebreak_local import runtime
from firebreak_local.conditions import Context, UnsupportedOperator, evaluate
from firebreak_local.faults import error_answer
from firebreak_local.template import Stack, Template, TemplateError

if TYPE_CHECKING:
    from botocore.awsrequest import AWSResponse
    from mypy_boto3_iam import IAMClient

MEMBER_UNIT_NAME = "firebreak-members"
ASSUME_ROLE_EVENT = "before-send.sts.AssumeRole"
_PARTITION = "aws"
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_ACCESS_KEY = re.compile(r"Credential=(\w+)/")
# The condition keys a trust statement may test that the engine knows the value of, for the caller.
_PRINCIPAL_KEYS = ("aws:principalorgid", "aws:principalarn", "aws:principalaccount")


class Organization:
    """The security account's organization in moto, with one organizational unit that every member account joins."""

    def __init__(self, management_account: str, region: str | None) -> None:
        """Creates it in moto; region None: moto holds it already (restored data), and this is its view of it."""
        # Through the backend, not the API: the engine's start pays no client for it, and it is the engine's own doing.
        self._backend = organizations_backends[management_account][_PARTITION]
        if region is not None:
            self._backend.create_organization(region=region, FeatureSet="ALL")
            assert self._backend.org is not None
            self._backend.create_organizational_unit(Name=MEMBER_UNIT_NAME, ParentId=self._backend.org.root_id)
        organization = self._backend.org
        assert organization is not None, f"no organization in {management_account}"
        self.id: str = organization.id
        self.root_id: str = organization.root_id
        self.unit_id: str = next(unit.id for unit in self._backend.ou if unit.name == MEMBER_UNIT_NAME)
        self.management_account = management_account
        self._joined: list[str] = []

    def join(self, account_id: str) -> None:
        """Make account_id a member (invited, active, in the member unit); nothing if it is one already."""
        if self.state(account_id) is not None:
            return
        # moto's create_account draws a random account id and gives it an OrganizationAccountAccessRole; a finding
        # names an existing account, which joins by invitation with none. So the account is registered as
        # create_account would register it (moto 5.2.5's FakeAccount attributes), with the finding's id.
        organization = self._backend.org
        assert organization is not None
        account: Any = FakeAccount.__new__(FakeAccount)
        account.type = "ACCOUNT"
        account.region = organization.region
        account.organization_id = organization.id
        account.master_account_id = organization.master_account_id
        account.create_account_status_id = organizations_utils.make_random_create_account_status_id()
        account.id = account_id
        account.name = f"member-{account_id}"
        account.email = f"aws+{account_id}@members.firebreak.invalid"
        account.create_time = utcnow()
        account.status = "ACTIVE"
        account.state = "ACTIVE"
        account.joined_method = "INVITED"
        account.parent_id = self.unit_id
        account.attached_policies = []
        account.tags = {}
        self._backend.accounts.append(account)
        for policy_id in (organizations_utils.DEFAULT_SCP_POLICY_ID, organizations_utils.DEFAULT_RCP_POLICY_ID):
            self._backend.attach_policy(PolicyId=policy_id, TargetId=account_id)
        organizations_backends.master_accounts[account_id] = (self.management_account, _PARTITION)
        self._joined.append(account_id)

    def state(self, account_id: str) -> str | None:
        """The account's State in the organization (ACTIVE, SUSPENDED), or None when it is not in it."""
        return next((account.state for account in self._backend.accounts if account.id == account_id), None)

    def close(self) -> None:
        """Forget the members: moto keeps its member -> management map across resets, unlike the backends."""
        for account_id in self._joined:
            organizations_backends.master_accounts.pop(account_id, None)
        self._joined.clear()


def deploy_member_stack(
    template: Template, parameters: Mapping[str, str], account_id: str, region: str, iam: IAMClient, stack_name: str
) -> list[str]:
    """Create every AWS::IAM::Role of the member template in the account, as the StackSet would; their names.

    Only roles are emulated: they are what the security account's functions act through. Any other resource of the
    member template is skipped, and a role that refers to one fails to resolve, loudly.
    """
    names: dict[str, str] = {}
    paths: dict[str, str] = {}

    def ref(logical_id: str) -> str:
        if logical_id not in names:
            raise TemplateError(f"member stack: Ref {logical_id} is not a role the engine created")
        return names[logical_id]

    def get_att(logical_id: str, attribute: str) -> str:
        name = ref(logical_id)
        if attribute != "Arn":
            raise TemplateError(
                f"member stack: Fn::GetAtt {logical_id}.{attribute} is not provided by the local engine"
            )
        return f"arn:{_PARTITION}:iam::{account_id}:role{paths[logical_id]}{name}"

    stack = Stack(
        template,
        ref=ref,
        get_att=get_att,
        overrides=parameters,
        region=region,
        account_id=account_id,
        stack_name=stack_name,
    )
    for logical_id in stack.dependency_order():
        if stack.resources[logical_id]["Type"] != "AWS::IAM::Role":
            continue
        props = stack.properties(logical_id)
        name = str(props.get("RoleName") or f"{stack_name}-{logical_id}")[:64]
        path = str(props.get("Path") or "/")
        optional: dict[str, Any] = {
            key: props[key] for key in ("Description", "MaxSessionDuration", "PermissionsBoundary") if key in props
        }
        if props.get("Tags"):
            optional["Tags"] = props["Tags"]
        iam.create_role(
            RoleName=name,
            Path=path,
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
            **optional,
        )
        for policy in props.get("Policies") or ():
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        for policy_arn in props.get("ManagedPolicyArns") or ():
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        names[logical_id], paths[logical_id] = name, path
    return list(names.values())


# --- trust policies --------------------------------------------------------------------------------------------


class Unevaluable(Exception):
    """A trust policy element the engine cannot evaluate; the AssumeRole is refused rather than guessed."""


@dataclass(frozen=True)
class Caller:
    """Who makes the AssumeRole: a role (the function's execution role, or a role assumed before) and its session."""

    role_arn: str
    session_name: str

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def session_arn(self) -> str:
        """The assumed-role ARN STS names the caller by, in its error messages and aws:userid."""
        return (
            f"arn:{_PARTITION}:sts::{self.account}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session_name}"
        )

    def principals(self) -> set[str]:
        """The Principal values that name this caller: its role, its session, its account."""
        return {self.role_arn, self.session_arn, f"arn:{_PARTITION}:iam::{self.account}:root", self.account}


def trust_allows(document: Any, caller: Caller, context: Mapping[str, str | None]) -> bool:
    """Whether the trust policy lets caller call sts:AssumeRole: no statement that applies denies, and one allows.

    Evaluates Effect, Principal (`*`, or AWS as a string or list: role ARN, session ARN, account root or id) and
    Action (string or list, IAM wildcards), and its Condition on the keys in context (aws:PrincipalOrgID,
    aws:PrincipalArn, aws:PrincipalAccount) with `firebreak_local.conditions`. A statement that names the caller and
    the action but holds another key or an operator that module does not evaluate raises Unevaluable. An account-root
    principal leaves the decision to the caller's own policies in AWS; the engine evaluates no identity policy
    anywhere, so it counts as allowing.
    """
    if not isinstance(document, Mapping):
        raise Unevaluable("a trust policy that is not a JSON object")
    statements = document.get("Statement")
    statements = [statements] if isinstance(statements, Mapping) else statements
    if not isinstance(statements, list):
        raise Unevaluable("a trust policy without a Statement list")
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            raise Unevaluable("a statement that is not a JSON object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise Unevaluable(f"Effect {effect!r}")
        if _applies(statement, caller, context):
            if effect == "Deny":
                return False
            allowed = True
    return allowed


def _applies(statement: Mapping[str, Any], caller: Caller, context: Mapping[str, str | None]) -> bool:
    for negated in ("NotPrincipal", "NotAction"):
        if negated in statement:
            raise Unevaluable(negated)
    if not _names_caller(statement.get("Principal"), caller):
        return False
    if not _names_assume_role(statement.get("Action")):
        return False
    return _conditions_hold(statement.get("Condition"), context)


def _names_caller(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise Unevaluable(f"Principal {principal!r}")
    # Service, Federated and CanonicalUser principals never name an IAM role's session.
    values = principal.get("AWS")
    if values is None:
        return False
    for value in _strings(values, "Principal AWS"):
        if value == "*" or value in caller.principals():
            return True
        if "*" in value or "?" in value:
            raise Unevaluable(f"the wildcard principal {value!r}")
    return False


def _names_assume_role(action: Any) -> bool:
    if action is None:
        raise Unevaluable("a statement without Action")
    return any(fnmatchcase("sts:assumerole", pattern.lower()) for pattern in _strings(action, "Action"))


def _conditions_hold(condition: Any, context: Mapping[str, str | None]) -> bool:
    if condition is None:
        return True
    if not isinstance(condition, Mapping):
        raise Unevaluable(f"Condition {condition!r}")
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            raise Unevaluable(f"{operator} {tests!r}")
        for key, expected in tests.items():
            _strings(expected, f"{operator} {key}")
    # A key the request lacks (the caller is in no organization) is known to be missing, as in AWS.
    carried = Context.of(
        {key: value for key, value in context.items() if value is not None},
        absent=tuple(key for key, value in context.items() if value is None),
    )
    try:
        verdict = evaluate(condition, carried)
    except UnsupportedOperator as error:
        raise Unevaluable(f"the condition operator {error}") from None
    if verdict.holds is None:
        raise Unevaluable(f"the condition key {verdict.unknown[0]}")
    return verdict.holds


def _strings(value: Any, what: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise Unevaluable(f"{what} {value!r}")
    return values


# --- the AssumeRole check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An AssumeRole the engine refused: who asked, for which role, and why (AWS's message never says)."""

    caller: str
    role_arn: str
    reason: str
    unevaluable: bool = False

    @property
    def message(self) -> str:
        message = f"User: {self.caller} is not authorized to perform: sts:AssumeRole on resource: {self.role_arn}"
        # Only a refusal the engine could not decide says why: it is the engine's limit, not AWS's answer.
        return f"{message} ({self.reason})" if self.unevaluable else message


@dataclass
class AssumeRoleCheck:
    """A runtime guard: an sts:AssumeRole made by a handler is answered AccessDenied unless AWS would allow it."""

    organization: Organization
    refusals: list[Refusal] = field(default_factory=list)

    def __call__(self, event_name: str, request: Any) -> AWSResponse | None:
        if event_name != ASSUME_ROLE_EVENT:
            return None
        function = runtime.current_function()
        # Only the stack's calls are checked: tests and the engine itself may assume whatever they like.
        if function is None:
            return None
        role_arn = _form(request).get("RoleArn", "")
        refusal = self.check(self._caller(request, function), role_arn)
        if refusal is None:
            return None
        self.refusals.append(refusal)
        return error_answer(request, "query", "AccessDenied", 403, refusal.message)

    def check(self, caller: Caller | None, role_arn: str) -> Refusal | None:
        """None when AWS would let caller assume role_arn; else the refusal."""
        if caller is None:
            return Refusal("unknown", role_arn, "the local engine knows no execution role for the caller", True)
        target = _ROLE_ARN.fullmatch(role_arn)
        if target is None:
            return Refusal(caller.session_arn, role_arn, "not a role ARN", True)
        account = target.group(1)
        if self.organization.state(account) == "SUSPENDED":
            return Refusal(caller.session_arn, role_arn, "the account is suspended")
        role = next((role for role in iam_backends[account][_PARTITION].roles.values() if role.arn == role_arn), None)
        if role is None:
            return Refusal(caller.session_arn, role_arn, "no such role")
        # The management account is in its organization too (moto lists it among the accounts).
        in_organization = self.organization.state(caller.account) == "ACTIVE"
        context = {
            "aws:principalorgid": self.organization.id if in_organization else None,
            "aws:principalarn": caller.role_arn,
            "aws:principalaccount": caller.account,
        }
        try:
            allowed = trust_allows(_policy(role.assume_role_policy_document), caller, context)
        except Unevaluable as error:
            reason = f"the local engine cannot evaluate {error} in the role's trust policy, so it refuses"
            return Refusal(caller.session_arn, role_arn, reason, True)
        return None if allowed else Refusal(caller.session_arn, role_arn, "the trust policy does not allow the caller")

    def _caller(self, request: Any, function: runtime.FunctionSpec) -> Caller | None:
        """The role session the request is signed with: a role assumed earlier (chaining), else the function's."""
        key = _access_key(request)
        if key is not None and key.startswith("ASIA"):
            assumed = sts_backends[get_account_id_from(key)][_PARTITION].get_assumed_role_from_access_key(key)
            if assumed is not None:
                return Caller(assumed.role_arn, assumed.session_name)
        return Caller(function.role_arn, function.name) if _ROLE_ARN.fullmatch(function.role_arn) else None


def _form(request: Any) -> dict[str, str]:
    body = request.body or b""
    text = body.decode() if isinstance(body, bytes) else str(body)
    return {key: values[0] for key, values in urllib.parse.parse_qs(text).items()}


def _access_key(request: Any) -> str | None:
    match = _ACCESS_KEY.search(str(request.headers.get("Authorization", "")))
    return match.group(1) if match else None


def _policy(document: Any) -> Any:
    """A stored policy document as data; IAM hands documents back URL-encoded, moto sometimes keeps them so."""
    if isinstance(document, Mapping):
        return document
    text = str(document)
    for candidate in (text, urllib.parse.unquote(text)):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None  # trust_allows refuses what is not a policy
