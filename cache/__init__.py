"""The per-user listing cache: versioned entries, a per-process memo of bodies, a circuit breaker."""
