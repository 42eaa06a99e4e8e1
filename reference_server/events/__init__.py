"""Events of the reference center: the one publisher (outbox + live fan-out) and stream cursors."""
