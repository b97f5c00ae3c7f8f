#!/bin/bash
# delivery A/B: 56f66bb (before delivery) vs split (after), alternated, relay ceiling in each run
for i in 1 2; do
  for tree in before split; do
    dir=/work/wt-$tree
    (cd $dir && PYTHONPATH=$dir timeout 1200 python3 -m benchmarks.ingest --rows 300000 --rounds 2 --skip slow-paths,c,h,raw-2 --data /tmp/dbench/data --results /tmp/dbench/$tree-$i) > /tmp/dbench/$tree-$i.log 2>&1
  done
done
echo finished > /tmp/dbench/done
