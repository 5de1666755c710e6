"""echoweave.train: data, phantom, augmentation, models, training engine and evaluation (torch)."""
