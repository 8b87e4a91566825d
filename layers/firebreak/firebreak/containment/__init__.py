"""Containing a workload: instance isolation and evidence, credential revocation. Imports firebreak.core, triage
and intel; never blocking."""
