"""csv2lp: CSV to InfluxDB line protocol, vectorized with Apache Arrow.

    from converter import convert, load_preset, ConvertOptions, open_output
    summary = convert(["gps.csv"], mapping=load_preset("movebank"),
                      options=ConvertOptions(), sink=open_output("gps.lp"))
"""

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

# The public names load their modules when first used: `import converter.console` (the
# command's entry point) must not import pyarrow's users before it has run (console.py says why).
_PUBLIC = {
    "BadRowError": "errors", "ConverterError": "errors", "InputError": "errors", "MappingError": "errors",
    "FieldSpec": "mapping", "FieldType": "mapping", "MappingSpec": "mapping", "Precision": "mapping",
    "TagSpec": "mapping", "TimeSpec": "mapping", "load_mapping_file": "mapping", "load_preset": "mapping",
    "ConvertOptions": "plan.options", "OnError": "plan.options", "convert": "pipeline",
    "open_output": "sinks", "RunSummary": "books.summary",
}

if TYPE_CHECKING:
    from .errors import BadRowError, ConverterError, InputError, MappingError
    from .mapping import (FieldSpec, FieldType, MappingSpec, Precision, TagSpec, TimeSpec, load_mapping_file,
                          load_preset)
    from .pipeline import convert
    from .plan.options import ConvertOptions, OnError
    from .sinks import open_output
    from .books.summary import RunSummary


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


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
