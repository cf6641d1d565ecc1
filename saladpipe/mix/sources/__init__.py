"""Mix source readers, one module per format; a new format is one file and one line here."""

from __future__ import annotations

from saladpipe.data_schemas.mix_config import MixSource
from saladpipe.data_schemas.mix_manifest import MixSourceReport
from saladpipe.mix.sources.base import SourceReader
from saladpipe.mix.sources.hf import HFDatasetReader, HFParquetReader
from saladpipe.mix.sources.lhotse import LhotseManifestReader, LhotseSharReader
from saladpipe.mix.sources.nemo import NemoManifestReader
from saladpipe.mix.sources.shards import ShardsReader
from saladpipe.mix.sources.text import TextReader, UnselectedReader

READERS: dict[str, type[SourceReader]] = {
    reader.kind: reader
    for reader in (
        ShardsReader,
        NemoManifestReader,
        HFParquetReader,
        HFDatasetReader,
        LhotseManifestReader,
        LhotseSharReader,
        TextReader,
        UnselectedReader,
    )
}


def reader_for(source: MixSource) -> SourceReader:
    """The reader of the source's kind."""
    return READERS[source.kind](source)


def recorded_reader(report: MixSourceReport) -> SourceReader:
    """The reader of a source as a mix's manifest recorded it (its validated config)."""
    return reader_for(MixSource.model_validate(report.config))
