"""Fine-tuning an encoder plus linear heads; the training loop and its parts."""
