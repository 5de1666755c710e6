"""Datasets, readers for training layouts (NED, EV9V), samplers, augmentation, splits, phantom."""
