"""Built-in checks, one module per item of Scalekit's SCIM production-readiness checklist.

Shipped as the package ``scim_readiness.checks``; the registry scans it. Importing a module
here only defines ``CHECK`` and ``run`` (and optionally ``cleanup``); nothing runs.
"""
