"""Dockerfile templates for cell images (installed as the package repro_matrix.images)."""
