"""What to run: the matrix file, the plan of cells, the repro files, and `new` scaffolding."""
