"""Package discovery that pyproject.toml cannot express on its own.

``checks/`` lives outside ``src/`` but ships as ``scim_readiness.checks`` (see the
``package-dir`` mapping in pyproject.toml); automatic discovery under ``src`` cannot see it,
so it and its subpackages (a check with private helpers is a package) are appended here.
Everything else is configured in pyproject.toml.
"""

from setuptools import find_packages, setup

CHECKS = "scim_readiness.checks"

setup(
    packages=[
        *find_packages("src"),
        CHECKS,
        *(f"{CHECKS}.{name}" for name in find_packages("checks")),
    ],
)
