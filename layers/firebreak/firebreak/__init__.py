"""Firebreak's domain package, shared by every Lambda through the FirebreakLayer, one subpackage per capability.

Layers, imports pointing down only: core; then triage, intel and feeds; then blocking and containment (the
playbooks' actions, which never import each other); then incident (the incident's life), on top.
"""
