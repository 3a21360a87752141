"""The reference app's own tests: its endpoints, flaws and portal."""
