"""The check contract: what a check declares, what it receives, and the run's records."""
