"""Expected failures; each class name is the error an ASL Catch matches."""


class FirebreakError(Exception):
    """Base of every expected failure."""


class FindingRejected(FirebreakError):
    """The event is not a finding Firebreak can read; the message says why."""


class BlockFailed(FirebreakError):
    """The WAF IPSet could not be updated after the bounded retries."""


class FeedConfigInvalid(FirebreakError):
    """The feed configuration document is not valid JSON or breaks its schema; no feed is synced."""


class FeedFetchFailed(FirebreakError):
    """A feed could not be downloaded whole; its addresses stay as they were."""


class FeedParseFailed(FirebreakError):
    """A feed was downloaded but is not the format its configuration says; its addresses stay as they were."""


class InstanceNotFound(FirebreakError):
    """The instance the finding names does not exist (any more), or is terminated."""


class QuarantineGroupUnavailable(FirebreakError):
    """Firebreak cannot find or create a security group it can trust to hold an instance in quarantine."""


class IamUnavailable(FirebreakError):
    """IAM throttled or failed after the SDK's own retries; every revocation step is safe to run again."""


class IncidentNotFound(FirebreakError):
    """A release named an incident the incident table does not hold."""


class EventNotPublished(FirebreakError):
    """EventBridge refused an incident status-change event; the stream hands the record back to be retried."""


class TransientAwsError(FirebreakError):
    """An AWS call was still throttled or failing server-side after the client's own retries; ASL Retry waits longer."""


class NetworkAclBusy(FirebreakError):
    """Another Firebreak writer held the network ACL's lease for longer than a block step may wait."""


class ApprovalDenied(FirebreakError):
    """A person denied an approval request; the error Answer Approval sends with SendTaskFailure."""


class ApprovalTokenInvalid(FirebreakError):
    """An approval token that is malformed, forged or expired; the message says which, and nothing changes."""


class ApprovalTokenExpired(ApprovalTokenInvalid):
    """A genuine approval token whose window has closed."""


class ApprovalAnswerInvalid(FirebreakError):
    """An answer to an approval request that is not {token, decision}; the message says what is expected."""


class MemberRoleUnavailable(FirebreakError):
    """The member role of the finding's account could not be assumed; the message names the account and the role."""


class DatabaseNotFound(FirebreakError):
    """The RDS DB instance or cluster the finding names does not exist (any more), or is being deleted."""
