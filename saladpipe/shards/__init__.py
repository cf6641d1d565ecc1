"""Readers of a run's output shards: a PyTorch dataset, exports to Lhotse and NeMo, verify."""
