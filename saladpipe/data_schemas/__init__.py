"""Data contracts: table schemas, the run config, the run layout and the manifest."""

from saladpipe.data_schemas.config import ModelSpec, RunConfig, load_config, parse_config
from saladpipe.data_schemas.errors import ConfigError, SaladpipeError, SchemaError
from saladpipe.data_schemas.layout import RunLayout
from saladpipe.data_schemas.manifest import Manifest, QuarantineEntry, ShardEntry

__all__ = [
    "ConfigError",
    "Manifest",
    "ModelSpec",
    "QuarantineEntry",
    "RunConfig",
    "RunLayout",
    "SaladpipeError",
    "SchemaError",
    "ShardEntry",
    "load_config",
    "parse_config",
]
