"""The commands and what only the command line does: run, cleanup, consent, demo."""
