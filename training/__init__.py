"""Everything that makes a checkpoint: MNIST data, augmentation, the CNN, training."""
