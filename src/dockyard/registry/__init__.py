"""The OCI distribution API (/v2/): a registry service and its thin HTTP layer."""
