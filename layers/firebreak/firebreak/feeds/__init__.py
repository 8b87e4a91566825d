"""Threat feeds: the validated configuration, fetching and parsing (plaintext, CSV, STIX, TAXII), syncing into the
feed IPSets and publishing a GuardDuty ThreatIntelSet. Imports only firebreak.core."""
