"""Clients for the outside parties a check talks to: HTTP targets and Scalekit."""
