"""End to end into InfluxDB: every way in, on the same rows, in one run.

    python -m benchmarks.ingest [--rows 1000000] [--server v2|v1|both] [--rounds N] [--skip slow-paths]
                                [--only b,kafka-paths] [--skip kafka-paths]

    inputs.py   the generated CSV, the same rows as line protocol (`csv2lp convert`), the
                points per series the database must hold
    servers.py  a fresh InfluxDB per path, from tests/support's server classes
    configs.py  the Telegraf and csv2lp configs: the shipped files with named edits
    rawpost.py  the database's own ceiling: gzip'd bodies POSTed on 1 or 2 connections
    watch.py    count() every 0.25 s once the writer has every row acknowledged, until complete;
                a short count re-checked after an influxd restart
    paths.py    each path (a-h), its clock, its processes' CPU seconds and peak RSS
    kafkapaths.py  i, j: csv2lp -> Kafka (a broker per path) -> 1 or 2 Telegraf kafka_consumer,
                and the backlog drained when influxd starts (InfluxDB 2 only)
    table.py    the Markdown table; the JSON goes with it into benchmarks/results/

benchmarks/README.md ("End to end into InfluxDB") says what each path is and how it is timed.
"""
