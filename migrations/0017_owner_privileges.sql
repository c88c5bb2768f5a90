-- The role that owns rmapp_runs (the workers' role) can use every rmapp object, whoever migrated. A
-- migration run by another role (a superuser upgrading with its own URL) creates its objects as that
-- role: a table (0003's artifacts), a sequence (0016's watch, granted only to the owner of the watch
-- table, which is the migrating role too when 0011 ran in the same upgrade) or a function (0015's
-- rmapp_commit_runs, unusable when the database revokes EXECUTE from PUBLIC by default). The workers
-- then failed every run write ("permission denied"). Whatever the owner lacks is granted here; nothing
-- is granted on a database where it lacks nothing (one role migrated everything, or a superuser owns
-- all). Only rmapp's own objects, named here: an operator's rmapp_* object is not touched. A GRANT the
-- migrating role may not give is only a warning when it holds some privilege on the object: what the
-- owner still lacks afterwards fails the migration, naming it. test/migrate-owner.test.ts.
DO $$
DECLARE
  runs_owner text := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'rmapp_runs'::regclass);
  nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'rmapp_runs'::regclass);
  obj record;
  name text;
  fn regprocedure;
  priv text;
  missing text[] := '{}';
BEGIN
  -- Tables and sequences: the privileges the workers use on each (a sequence's through nextval/setval).
  FOR obj IN SELECT c.oid::regclass AS rel, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, v.privs
      FROM (VALUES ('rmapp_runs', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']), ('rmapp_run_history', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
        ('rmapp_run_inbox', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']), ('rmapp_run_artifacts', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
        ('rmapp_run_history_id_seq', ARRAY['SELECT', 'UPDATE']), ('rmapp_run_inbox_id_seq', ARRAY['SELECT', 'UPDATE']),
        ('rmapp_run_change_watch_until', ARRAY['SELECT', 'UPDATE'])) v(name, privs)
      JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', nsp, v.name))
      ORDER BY c.relkind DESC, v.name LOOP
    FOREACH priv IN ARRAY obj.privs LOOP
      -- has_table_privilege reads a sequence's SELECT and UPDATE as well (one ACL of the relation).
      CONTINUE WHEN has_table_privilege(runs_owner, obj.rel, priv);
      BEGIN
        EXECUTE format('GRANT %s ON %s %s TO %I', priv, obj.kind, obj.rel, runs_owner);
      EXCEPTION WHEN insufficient_privilege THEN NULL;
      END;
      IF NOT has_table_privilege(runs_owner, obj.rel, priv) THEN missing := missing || format('%s on %s %s', priv, lower(obj.kind), obj.rel); END IF;
    END LOOP;
  END LOOP;
  FOREACH name IN ARRAY ARRAY['rmapp_commit_runs(jsonb)', 'rmapp_history_events(jsonb, json)', 'rmapp_notify_run_changed()'] LOOP
    fn := to_regprocedure(format('%I.%s', nsp, name));
    CONTINUE WHEN fn IS NULL OR has_function_privilege(runs_owner, fn, 'EXECUTE');
    BEGIN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, runs_owner);
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    IF NOT has_function_privilege(runs_owner, fn, 'EXECUTE') THEN missing := missing || format('EXECUTE on function %s', fn); END IF;
  END LOOP;
  IF cardinality(missing) > 0 THEN
    RAISE EXCEPTION 'rmapp migration 0017: the owner of rmapp_runs (%) lacks %, which % cannot grant', runs_owner, array_to_string(missing, ', '), current_user
      USING HINT = 'Run rmapp migrate as a superuser or as the role that ran the earlier migrations, or grant these privileges and start rmapp again.';
  END IF;
END $$;
