"""The package index client, uv locks per era cutoff, and the released files on this host."""
