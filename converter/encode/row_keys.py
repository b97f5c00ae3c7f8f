"""Fields whose key is read row by row from another column.

Annotated CSV in the "long" layout of Flux results (`_field`, `_value`) names the field of
each row in a cell: `_field=usage_user, _value=2.5` is the field `usage_user=2.5`. Such a
field is resolved like any other (its value column, type, and a placeholder key), and
`key_index` says where each row's key is; the encoder checks and escapes the keys once per
distinct value, like tag values (encoder.py, `Encoder._keyed_by_row`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..mapping import ResolvedField


@dataclass(frozen=True)
class RowKeyedField(ResolvedField):
    key_index: int = -1  # the column that holds each row's key; an empty cell means no field
    key_column: str = ""  # its name, for reject reasons
