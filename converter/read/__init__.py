"""Reading: bytes from a file, a pipe or stdin become blocks of raw cells with their line numbers.

Nothing here knows about line protocol: a block is text cells, the physical line of each
row, and the rows that could not be cut into cells (ragged, cut off, a runaway quote).

    path, -, FIFO ──> source.open_source ──> streams: count bytes, put read bytes back,
                           │                  gunzip / bunzip2 / unzstd by extension or magic
                           │ header.py: the header record of a plain CSV
                           │ settings.py: skipped rows, comment lines, header rows (Telegraf's csv_*)
                           v
                      source.CsvSource ──> Arrow's streaming CSV reader
                           │                  utf8guard.py: undecodable bytes kept, not fatal
                           │                  readahead.py: at most a few blocks ahead
                           v
                      source.Block: raw cells + line numbers ──> plan / pipeline
                           quotes.py: an unbalanced quote that ran over later rows

- source.py    inputs and globs, `open_source`, `CsvSource` and its `Block`s
- streams.py   byte-stream plumbing: counting, putting bytes back, decompressing
- header.py    the header record, read from the first bytes with Python's csv module
- settings.py  files whose header is not their first line; comment lines; blank rows
- quotes.py    unbalanced quotes: which rows a quoted cell ran over
- utf8guard.py undecodable bytes through Arrow's reader without losing the file
- readahead.py how far Arrow may read ahead of the batches taken from it
"""
