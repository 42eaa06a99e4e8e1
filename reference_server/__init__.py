"""The Ansim Interop reference smart-city center (gRPC server, store, events, security)."""
