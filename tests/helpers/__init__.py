"""Test helpers shared across test files (tiny configs and a trained tiny checkpoint)."""
