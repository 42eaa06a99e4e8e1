"""Security of the reference center: development PKI, bearer tokens, TLS credentials, the caller."""
