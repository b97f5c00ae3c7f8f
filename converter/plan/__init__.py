"""Everything decided before the first row is read: the plan `pipeline` executes.

    inputs, options ──> prepare.py: every input opened once (read/), every header read and
          │             resolved, refused together before anything is written
          │                 │
          │                 v
          │             file_plan.py: a file's header ──> formats/ (annotated tables, Telegraf's
          │             csv_* options) ──> mapping.resolve ──> the columns each part encodes
          v
      options.py: ConvertOptions and OnError, what the run is asked to do besides the mapping
      outputs.py: every path the run writes checked first (exists, takes a new file, is no
                  input nor another output, stdout included)

Nothing here reads rows or writes lines; `pipeline` gets a Prepared run and only executes it.
"""
