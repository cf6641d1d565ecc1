"""Orchestration: the Prefect flow of a round, the executor of its stages, the local server."""
