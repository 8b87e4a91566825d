"""Firebreak's domain package, shared by every Lambda through the FirebreakLayer."""
