"""Reports from stored results: markdown, HTML, SVG, the claim section and their vocabulary."""
