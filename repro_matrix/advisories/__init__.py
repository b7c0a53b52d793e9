"""OSV advisories in and out: reading a claim from one, writing one from a verdict."""
