"""The `--kafka-*` options of convert: their declarations, which go together, and opening the sink.

What the settings mean (limits, defaults, client properties) is converter/sinks/kafka's;
here are only the command line's rules, so convert.py stays a few lines about Kafka.
"""

from __future__ import annotations

from typing import Any, Callable

import click

# The keyword names click gives the --kafka-* options, --kafka-brokers first.
FLAGS = ("kafka_brokers", "kafka_topic", "kafka_config", "kafka_timeout", "kafka_message_lines",
         "kafka_message_bytes")


def kafka_options(function):
    options = [
        click.option("--kafka-brokers", metavar="HOST:PORT[,...]",
                     help="Write to Apache Kafka instead of stdout: the brokers to start from (needs "
                          "pip install 'csv2lp[kafka]'). A line counts as written when the broker acknowledged its "
                          "message (idempotent producer, acks=all, lz4). SASL/TLS come from $KAFKA_SASL_USERNAME, "
                          "$KAFKA_SASL_PASSWORD, $KAFKA_SASL_MECHANISM, $KAFKA_SECURITY_PROTOCOL, "
                          "$KAFKA_SSL_CA_LOCATION or --kafka-config, never from the command line."),
        click.option("--kafka-topic", metavar="TOPIC",
                     help="With --kafka-brokers: the topic. A message holds lines of one series (its key), so a "
                          "series stays in one partition, in file order."),
        click.option("--kafka-config", metavar="FILE", type=click.Path(dir_okay=False),
                     help="With --kafka-brokers: librdkafka properties, one key=value a line (security.protocol, "
                          "sasl.*, ssl.*, compression.type, client.id, ...)."),
        click.option("--kafka-timeout", type=click.FloatRange(0), metavar="SECONDS",
                     help="With --kafka-brokers: how long a message may wait for the broker's acknowledgement "
                          "(default 900; 0: no limit). While the broker is away the run waits and says so; past "
                          "this it stops with the exact number of lines not acknowledged."),
        click.option("--kafka-message-lines", type=click.IntRange(1), metavar="N",
                     help="With --kafka-brokers: most lines per message (default 1000, what "
                          "telegraf/kafka-consumer.conf is sized for)."),
        click.option("--kafka-message-bytes", type=click.IntRange(1024), metavar="N",
                     help="With --kafka-brokers: most bytes per message, key included (default 1000000, or less "
                          "when the topic's max.message.bytes is lower)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def take_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The --kafka-* values, taken out of the command's keyword arguments."""
    return {name: flags.pop(name, None) for name in FLAGS}


def wanted(kafka: dict[str, Any]) -> bool:
    return kafka.get("kafka_brokers") is not None


def usage_problem(kafka: dict[str, Any], *, output: str | None, influx_url: str | None) -> str | None:
    """Why these options do not go together (a usage error before any file is opened), or None."""
    given = [f"--{name.replace('_', '-')}" for name in FLAGS[1:] if kafka.get(name) is not None]
    if not wanted(kafka):
        if given:
            return f"{', '.join(given)} only go{'es' if len(given) == 1 else ''} with --kafka-brokers."
        return None
    if output is not None or influx_url is not None:
        return "--kafka-brokers cannot be combined with -o/--output or --influx-url: lines go to one output."
    if not kafka.get("kafka_topic"):
        return "--kafka-brokers needs --kafka-topic (the topic to write to)."
    return None


def open_kafka_from_flags(kafka: dict[str, Any], *, notify: Callable[[str], None] | None) -> Any:
    """The KafkaSink for these options: the cluster reached and the topic checked, before any row is read."""
    from ..sinks.kafka import open_kafka_sink

    return open_kafka_sink(brokers=kafka["kafka_brokers"], topic=kafka["kafka_topic"],
                           config_file=kafka["kafka_config"], timeout_s=kafka["kafka_timeout"],
                           message_lines=kafka["kafka_message_lines"], message_bytes=kafka["kafka_message_bytes"],
                           notify=notify)
