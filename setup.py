"""Package discovery that pyproject.toml cannot express on its own.

``checks/`` lives outside ``src/`` but ships as ``scim_readiness.checks`` (see the
``package-dir`` mapping in pyproject.toml); automatic discovery under ``src`` cannot see it,
so it is appended here. Everything else is configured in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages("src"), "scim_readiness.checks"])
