"""Writes of the phone side that run as batch jobs (observed outcomes, rollout gates)."""
