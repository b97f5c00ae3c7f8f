"""Encoding: one block of raw cells in, one Arrow array of line-protocol lines out, no Python per row.

    Block (raw cells) ──> encoder.Encoder ──> per column:
                             cells.py        text -> typed arrays, with the rows that failed
                             number_text.py  numeric text reused when it is already canonical
                             timestamps.py   the time column -> exact integers in the precision
                             escape.py       measurement, tag and string escaping, by the column
                             geo.py          S2 cell tokens from lat/lon
                             row_keys.py     field keys read from another column
                          ──> the lines, plus RowErrors (books) for the rows left out

encoder.py's big comment shows a line being assembled from whole arrays.
"""
