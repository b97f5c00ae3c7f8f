"""Lines into an Apache Kafka topic: `csv2lp FILE --kafka-brokers HOST:PORT --kafka-topic TOPIC`.

Kafka is the durable log between many producers (csv2lp runs, csv2lp agents) and a group
of consumers (Telegraf's kafka_consumer, telegraf/kafka-consumer.conf) that write to
InfluxDB. This package is the producer; confluent-kafka (librdkafka) is imported only by
client.py and sink.py, when a run writes to Kafka (`pip install 'csv2lp[kafka]'`).

    open_kafka_sink ── settings.py: options, $KAFKA_SASL_*, --kafka-config FILE (never argv)
          │            client.probe: a broker answers? credentials? the topic (or auto-created)?
          │                          its max.message.bytes?  ── each "no": one line, in seconds
          ▼
    pipeline ──write_lines(block)──▶ KafkaSink ── bounded queue of 2 blocks: full, reading waits
                                          ▼
                               producer thread: messages.message_views(block)
                                 key = the series (measurement + tags, up to the first
                                 unescaped space), found for the block at once; a stable
                                 sort groups each series' lines in file order; messages of
                                 up to 1,000 lines and the topic's size limit
                                          │ produce(): one Python call per message, its value a
                                          │ slice of the block's buffer (librdkafka copies it)
                                          ▼
                 librdkafka: idempotent, acks=all, lz4, its queue bounded (16 MB): full while
                 the broker is away -> the producer thread waits, says so, reading stops
                                          ▼
                  delivery callbacks -> Books: acknowledged / failed / not sent, per message

Promises (each one tested against a real broker):

- A line counts as written when the broker acknowledged its message (all in-sync
  replicas), never before; the summary and the exit status say exactly how many were not.
- A series' lines share one key, so one partition, in file order: a consumer reads copies
  of a point in the order they were written, and InfluxDB keeps the last, as it would
  have from one writer. Idempotence keeps librdkafka's own retries from duplicating or
  reordering messages.
- Records carry the time they were written (CreateTime = now), never the data's time:
  a topic's time retention counts from the record's timestamp, and years-old times would
  have the broker delete the records within seconds, before any consumer read them.
- The broker away: memory stays bounded, the run waits and says so, and goes on when the
  broker is back; a message not acknowledged within --kafka-timeout ends the run with the
  exact count. Secrets never appear in a message (settings.mask).
"""

from .messages import LineTooLong, Message, message_views, messages_of, series_codes, series_key_ends
from .settings import ClientConfig, KafkaSettings, KafkaWriteError, read_client_config, read_properties
from .sink import Books, KafkaSink, open_kafka_sink

__all__ = [
    "Books", "ClientConfig", "KafkaSettings", "KafkaSink", "KafkaWriteError", "LineTooLong", "Message",
    "message_views", "messages_of", "open_kafka_sink", "read_client_config", "read_properties", "series_codes", "series_key_ends",
]
