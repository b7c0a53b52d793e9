"""Verdicts from records: derivation, boundary explanations, causes, baseline, --fail-on."""
