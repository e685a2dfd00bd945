"""Training, evaluation and data generation for the lifter (not installed with the package)."""
