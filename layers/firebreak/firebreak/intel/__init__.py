"""Intelligence on addresses: enrichment verdicts, threat-intel providers and their cache, the allow and deny lists,
and sharing an incident's indicators as STIX. Imports only firebreak.core."""
