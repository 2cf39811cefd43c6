"""The Federation server's domain: jobs, their specs and the privacy they spend."""
