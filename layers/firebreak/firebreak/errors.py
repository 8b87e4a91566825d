"""Expected failures; each class name is the error an ASL Catch matches."""


class FirebreakError(Exception):
    """Base of every expected failure."""


class FindingRejected(FirebreakError):
    """The event is not a finding Firebreak can read; the message says why."""


class BlockFailed(FirebreakError):
    """The WAF IPSet could not be updated after the bounded retries."""


class NetworkAclBusy(FirebreakError):
    """Another Firebreak writer held the network ACL's lease for longer than a block step may wait."""
