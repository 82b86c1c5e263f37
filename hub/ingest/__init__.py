"""The one write path: every channel's events reach the timeline through here.

The pipeline lives in :mod:`hub.ingest.batch`; this package exports what the
rest of Corridor (and the connectors, through the hub's contract) imports.
"""

from hub.ingest.batch import (
    CHUNK,
    DEFER_DELAY,
    FINAL_RANK,
    PIPELINE_KEY,
    Arrival,
    GroupCommit,
    IngestResult,
    InvalidEvent,
    JournalWriter,
    PipelineConfig,
    _group_commit,
    ingest,
    ingest_many,
    insert_returning_ids,
    moves_forward,
    on_received,
    pairs_in,
    pipeline_config,
    process_journaled,
    receive,
    record_unparseable,
    retry_delay,
    status_rank,
)

__all__ = [
    "CHUNK",
    "DEFER_DELAY",
    "FINAL_RANK",
    "PIPELINE_KEY",
    "Arrival",
    "GroupCommit",
    "IngestResult",
    "InvalidEvent",
    "JournalWriter",
    "PipelineConfig",
    "_group_commit",
    "ingest",
    "ingest_many",
    "insert_returning_ids",
    "moves_forward",
    "on_received",
    "pairs_in",
    "pipeline_config",
    "process_journaled",
    "receive",
    "record_unparseable",
    "retry_delay",
    "status_rank",
]
