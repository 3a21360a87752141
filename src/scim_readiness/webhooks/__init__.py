"""Delivering signed events to the app and reading what it did with them."""
