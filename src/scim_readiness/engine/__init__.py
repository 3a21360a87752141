"""What drives checks: the registry, the runner and the sweep of what a run created."""
