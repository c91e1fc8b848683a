"""Pure OCI formats: digests, names, media types, manifests. No I/O lives here."""
