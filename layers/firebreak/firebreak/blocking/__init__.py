"""Blocking attacker addresses: the block list's truth, the block step over the WAF IPSets, network ACL entries and
the expiry sweep. Imports firebreak.core, triage and intel; never containment."""
