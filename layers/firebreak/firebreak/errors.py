"""Expected failures; each class name is the error an ASL Catch matches."""


class FirebreakError(Exception):
    """Base of every expected failure."""


class FindingRejected(FirebreakError):
    """The event is not a finding Firebreak can read; the message says why."""


class BlockFailed(FirebreakError):
    """The WAF IPSet could not be updated after the bounded retries."""


class ApprovalDenied(FirebreakError):
    """A person denied an approval request; the error Answer Approval sends with SendTaskFailure."""


class ApprovalTokenInvalid(FirebreakError):
    """An approval token that is malformed, forged or expired; the message says which, and nothing changes."""


class ApprovalTokenExpired(ApprovalTokenInvalid):
    """A genuine approval token whose window has closed."""


class ApprovalAnswerInvalid(FirebreakError):
    """An answer to an approval request that is not {token, decision}; the message says what is expected."""
