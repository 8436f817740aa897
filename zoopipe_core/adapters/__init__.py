"""Input and output adapters shipped with the core."""
