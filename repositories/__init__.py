"""Every SQL statement the service runs, one repository per table."""
