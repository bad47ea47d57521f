"""Outgoing mail: SMTP (or the log, in development) behind a bounded queue drained off the request."""
