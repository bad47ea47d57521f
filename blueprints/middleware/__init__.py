"""HTTP plumbing every request passes through: the body limit, the request id, standard headers, strict JSON."""
