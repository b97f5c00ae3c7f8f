"""Everything decided before the first row is read.

    inputs, options, mapping ──> outputs.py: every path the run writes checked first
                                 (exists, takes a new file, is no input nor another output)

The plan of a file (header -> resolved mapping) is built in `pipeline` today; it moves here
next (see the layering contracts in setup.cfg).
"""
