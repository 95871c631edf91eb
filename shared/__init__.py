"""pgha's domain: what a cluster is, how it is seen, and the port to the platform that runs it."""
