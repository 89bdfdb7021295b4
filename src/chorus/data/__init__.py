"""Datasets: manifests, splits, label maps, annotations and synthetic demo data."""
