"""Creating, changing and removing test identities through events or SCIM."""
