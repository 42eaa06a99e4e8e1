"""grpc.aio server interceptors of the reference center, outermost first:
metrics → logging → error mapping → auth (→ live-mode guard in insecure dev mode) → servicer."""
