"""chorus: probe, fine-tune, share and compose audio foundation models."""

__version__ = "0.1.0"
