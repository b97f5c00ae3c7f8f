"""csv2lp: CSV to InfluxDB line protocol, vectorized with Apache Arrow.

    from converter import convert, load_preset, ConvertOptions, open_output
    summary = convert(["gps.csv"], mapping=load_preset("movebank"),
                      options=ConvertOptions(), sink=open_output("gps.lp"))
"""

__version__ = "0.1.0"

from .errors import BadRowError, ConverterError, InputError, MappingError  # noqa: E402
from .mapping import (  # noqa: E402
    FieldSpec,
    FieldType,
    MappingSpec,
    Precision,
    TagSpec,
    TimeSpec,
    load_mapping_file,
    load_preset,
)
from .pipeline import ConvertOptions, OnError, convert  # noqa: E402
from .sinks import open_output  # noqa: E402
from .summary import RunSummary  # noqa: E402

__all__ = [
    "BadRowError",
    "ConvertOptions",
    "ConverterError",
    "FieldSpec",
    "FieldType",
    "InputError",
    "MappingError",
    "MappingSpec",
    "OnError",
    "Precision",
    "RunSummary",
    "TagSpec",
    "TimeSpec",
    "convert",
    "load_mapping_file",
    "load_preset",
    "open_output",
    "__version__",
]
