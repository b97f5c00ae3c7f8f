"""Input formats beyond a plain CSV with one header line: each becomes a mapping and read settings.

    annotated CSV (`influx write`, Flux results) ──> annotated.py ──> tables of one layout each
                                                        │ annotated_types.py: #datatype -> FieldType,
                                                        │ time formats, cell rewrites
                                                        v
                                                 MappingSpec + ReadSettings per table
    Telegraf's csv_* options (a telegraf.conf) ──> telegraf_csv.py ──> MappingSpec + ReadSettings

The plain path needs nothing from here: `plan` asks `formats` only when the file or the
options say it is one of these.
"""
