"""Small, self-contained experiments that check a claim about the data or the models."""
