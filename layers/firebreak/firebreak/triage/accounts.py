"""Whose findings the stack answers: its own account, the active members of its organization, and AllowedAccountIds.

Anyone who can import a Security Hub finding can name any account in it, and GuardDuty's invited members need not
belong to the organization; acting on such a finding would act, or fail to act, in an account nobody vouched for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from firebreak.core.aws import error_code
from firebreak.core.members import Organization


def account_refusal(account_id: str, organization: Organization, organizations: Callable[[], Any]) -> str | None:
    """Why a finding about `account_id` is not this stack's to answer; None when it is.

    `organizations` builds the client, asked only about an account that is neither the stack's own nor allowed by
    name; a delegated administrator of any service may call DescribeAccount.
    """
    if organization.is_own(account_id) or account_id in organization.allowed_account_ids:
        return None
    if not organization.organization_id:
        return (
            f"account {account_id} is not this stack's account ({organization.stack_account_id}) and not in"
            " AllowedAccountIds; deploy for an organization (OrganizationUnitIds) or list it to answer its findings"
        )
    try:
        account = organizations().describe_account(AccountId=account_id)["Account"]
    except ClientError as error:
        if error_code(error) != "AccountNotFoundException":
            raise
        return (
            f"account {account_id} is not a member of organization {organization.organization_id} and not in"
            " AllowedAccountIds: its finding is not acted on"
        )
    # Organizations retired `Status` for `State` (2026-09-09); read the new field and fall back to the old one.
    status = str(account.get("State") or account.get("Status") or "ACTIVE")
    if status != "ACTIVE":
        return f"account {account_id} is {status} in organization {organization.organization_id}: nothing can act there"
    return None
