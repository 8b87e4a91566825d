"""Expected failures; each class name is the error an ASL Catch matches."""


class FirebreakError(Exception):
    """Base of every expected failure."""


class FindingRejected(FirebreakError):
    """The event is not a finding Firebreak can read; the message says why."""


class BlockFailed(FirebreakError):
    """The WAF IPSet could not be updated after the bounded retries."""


class IncidentNotFound(FirebreakError):
    """A release named an incident the incident table does not hold."""


class EventNotPublished(FirebreakError):
    """EventBridge refused an incident status-change event; the stream hands the record back to be retried."""
