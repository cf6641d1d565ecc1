"""Trainer-facing shards: writing, streaming, verifying and exporting them."""
