"""Layer-wise probing of frozen encoders (``chorus probe``): features of every layer from
one pass, batched linear / attention / layer-sum probes for every (layer, learning rate)
at once, selection on validation only, reports."""
