"""Expected failures; each class name is the error an ASL Catch matches."""


class FirebreakError(Exception):
    """Base of every expected failure."""


class FindingRejected(FirebreakError):
    """The event is not a finding Firebreak can read; the message says why."""


class BlockFailed(FirebreakError):
    """The WAF IPSet could not be updated after the bounded retries."""


class InstanceNotFound(FirebreakError):
    """The instance the finding names does not exist (any more), or is terminated."""


class QuarantineGroupUnavailable(FirebreakError):
    """Firebreak cannot find or create a security group it can trust to hold an instance in quarantine."""
