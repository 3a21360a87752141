"""scim-readiness: is this application's Scalekit SCIM provisioning ready for production?"""

__version__ = "0.1.0"
