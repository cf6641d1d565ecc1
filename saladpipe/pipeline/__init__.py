"""The stages as plain functions over shards: ingest, embed, cluster, probe, score, select,
synthesize, write. Each works without Prefect; flows only orchestrate them."""
