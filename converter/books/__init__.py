"""The books of a run: every row read either becomes a line or is rejected with a reason.

    encoder / reader ──> rowerrors.RowErrors: the first reason per rejected row
                              │
                              ├──> rejects.RejectsWriter: the rows themselves, with file, line, reason
                              ├──> duplicates.DuplicateTracker: points that would overwrite each other
                              v
                         summary.RunSummary: rows read == lines written + rows rejected

Nothing here reads or encodes; the books only count and keep what the others report.
"""
