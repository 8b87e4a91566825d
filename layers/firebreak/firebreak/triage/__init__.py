"""Triage: a finding normalised into an incident, its identity, route, mode, approval and circuit-breaker budget,
and the triage decision Parse Finding returns. Imports only firebreak.core."""
