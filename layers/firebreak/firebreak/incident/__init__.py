"""The incident's life: its record, notifications, Security Hub write-back, status events, release and undo, and
the post-incident report. Imports any lower layer; nothing imports it but handlers and the local engine."""
