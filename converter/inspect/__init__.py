"""`csv2lp inspect`: what convert would do with a file, before converting it.

    FILE... ──> sampling.inspect_inputs ──> the same plan and encoder as convert, over a sample
                   │  (plan.check_inputs, plan.parts_and_plans, pipeline.iter_blocks)
                   v
              report.InspectReport: per column its role, type, distinct values, empty cells;
                   │  series and duplicate points; a few lines as convert would write them
                   v
              report.render ──> the text `csv2lp inspect` prints

Nothing is written: inspect only reads, counts and shows.
"""

from .report import ColumnReport, InspectReport, Role, render
from .sampling import inspect_inputs

__all__ = ["ColumnReport", "InspectReport", "Role", "inspect_inputs", "render"]
