"""Model registry: image, gru, tfw, attention over a configurable torchvision backbone."""
