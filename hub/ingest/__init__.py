"""The one write path: every channel's events reach the timeline through here.

Entry points:

* ``receive(database, items, source=...)`` for webhooks and the event API:
  journals the items as *received* in a group commit and returns once they
  are durable; the journal processor (``hub.journal``) then runs them
  through the pipeline in batches, its claim committing with the timeline
  rows.
* ``ingest_many(session, items, source=...)`` (and ``ingest`` for one item)
  for callers that own their pace (the mail intake, agents' replies, the
  demo): journals and processes the batch in the caller's transaction.

The pipeline, a module per step, in the order of the README's diagram:

1. **Journal** (:mod:`.journal`; received items: :mod:`.receiving`): every
   raw payload is a row first. It commits with the rest, or, when processing
   fails, alone with its error; either way nothing the caller acknowledged
   is lost.
2. **Dedupe** (:mod:`.dedupe`) on ``(channel, external_id)`` for events
   (for an email's Message-ID, and the same content: a different message
   under a known id is stored as its own) and ``(channel, update_id)`` for
   updates, also against concurrent writers (unique constraints, and on
   PostgreSQL a row lock on each customer).
3. **Identity** (:mod:`.identity`): normalise the customer's address and
   find or create the customer.
4. **Thread** (:mod:`.thread`): explicit references, then a provider
   session of the same customer, then the customer's open conversation
   within the continuation window (whatever the channel), else a new
   conversation.
5. **Append** (:mod:`.append`) the interactions and their attachments;
   move conversations' last activity. Updates to stored interactions
   (delivery status, call outcome, transcript): :mod:`.updates`.
6. **Index** (:mod:`.index`): the in-transaction search index, or an outbox
   row for an external one.
7. **Notify** (:mod:`.notify`) after commit.

:mod:`.batch` runs the steps over a batch; :mod:`.pipeline` holds what they
share, :mod:`.statements` the tables and batch-sized statements.
"""

from hub.ingest.batch import ingest, ingest_many, process_journaled
from hub.ingest.journal import DEFER_DELAY, Arrival, record_unparseable, retry_delay
from hub.ingest.pipeline import PIPELINE_KEY, IngestResult, InvalidEvent, PipelineConfig, pipeline_config
from hub.ingest.receiving import GroupCommit, JournalWriter, _group_commit, on_received, receive
from hub.ingest.statements import CHUNK, insert_returning_ids, pairs_in
from hub.ingest.updates import FINAL_RANK, moves_forward, status_rank

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
