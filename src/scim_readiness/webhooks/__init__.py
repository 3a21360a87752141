"""Delivering signed events to the app and reading what it did with them."""

# Here rather than in traces: checks' declarations name it as a fix, and they must stay light.
CONFIGURE_PROBE = "Configure a probe (see 'Observing the app') so the check can look."
