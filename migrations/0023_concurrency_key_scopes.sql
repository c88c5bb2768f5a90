-- Concurrency keys are stored with their scope first (src/state_machine/concurrency-key.ts): `g:<key>`
-- for a `scope: 'global'` key, `w:<workflow>:<key>` for a workflow's key, `w:<workflow>` for a
-- workflow's own limit (the name's `%` and `:` escaped as %25 and %3A). Before, a workflow's key was
-- stored as `<workflow>:<key>`, its own limit as `<workflow>` and a global key as it was, so the global
-- key `Deploy:prod` and workflow Deploy's key `prod` were one text, and shared one limit.
-- Rewritten here: the keys of the runs whose key is still read — those that hold or wait for a slot
-- (pending, running, waiting) and failed ones, which a retry puts back in their key's queue. A finished
-- run's key is read by nothing and keeps its old form. The old form does not say which scope a key had:
-- a key that is the run's workflow's name, or starts with it and `:`, was the workflow's own (the
-- limit counted it with them before, and still does); any other key was a global one.
-- A key already in the new form (`g:…`, or `w:` and the run's own workflow: an engine of this version that
-- ran before its migration, `createEngine({ migrate: false })`) is left as it is. So is an old key that
-- only looks so (a global key `g:x`, then global key `x`; a key of workflow `w` starting with `w:`).
-- Except the keys of a workflow named `g`: every one of its old keys starts with `g:`, where only a run
-- started before the migration by an engine with `migrate: false` has a global key; each is its own.
-- A process of the version before that is still running after this migration goes on storing the old
-- form (a process checks the record of migrations only as it starts): stop those before migrating.
-- `version` is left as it is: the key is no part of what a worker holding the run writes.
UPDATE "rmapp_runs" SET "concurrency_key" = CASE
    WHEN "concurrency_key" = "workflow"
      THEN 'w:' || replace(replace("workflow", '%', '%25'), ':', '%3A')
    WHEN left("concurrency_key", length("workflow") + 1) = "workflow" || ':'
      THEN 'w:' || replace(replace("workflow", '%', '%25'), ':', '%3A') || ':' || substr("concurrency_key", length("workflow") + 2)
    ELSE 'g:' || "concurrency_key"
  END
  WHERE "concurrency_key" IS NOT NULL AND "status" IN ('pending', 'running', 'waiting', 'failed')
    AND (left("concurrency_key", 2) <> 'g:' OR "workflow" = 'g')
    AND "concurrency_key" <> 'w:' || replace(replace("workflow", '%', '%25'), ':', '%3A')
    AND left("concurrency_key", length(replace(replace("workflow", '%', '%25'), ':', '%3A')) + 3)
      <> 'w:' || replace(replace("workflow", '%', '%25'), ':', '%3A') || ':';
