-- Room on each page for HOT updates: a run is rewritten after every macrostep, and a HOT update
-- (no indexed column changed, free space on the same page) writes no index entries.
ALTER TABLE "rmapp_runs" SET (fillfactor = 70);
