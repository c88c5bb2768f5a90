-- The role that owns rmapp_runs (the workers' role) can use every rmapp object, whoever migrated. A
-- migration run by another role (a superuser upgrading with its own URL) creates its objects as that
-- role: a table (0003's artifacts), a sequence (0016's watch, granted only to the owner of the watch
-- table, which is the migrating role too when 0011 ran in the same upgrade) or a function (0015's
-- rmapp_commit_runs, unusable when the database revokes EXECUTE from PUBLIC by default). The workers
-- then failed every run write ("permission denied"). Whatever the owner lacks is granted here; nothing
-- is granted on a database where it lacks nothing (one role migrated everything, or a superuser owns
-- all). test/migrate-owner.test.ts.
DO $$
DECLARE
  runs_owner text := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'rmapp_runs'::regclass);
  schema_oid oid := (SELECT relnamespace FROM pg_class WHERE oid = 'rmapp_runs'::regclass);
  obj record;
  priv text;
BEGIN
  FOR obj IN SELECT c.oid, c.relkind FROM pg_class c
      WHERE c.relnamespace = schema_oid AND c.relname LIKE 'rmapp\_%' AND c.relname <> 'rmapp_migrations' AND c.relkind IN ('r', 'S') LOOP
    FOREACH priv IN ARRAY CASE WHEN obj.relkind = 'r' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] ELSE ARRAY['USAGE', 'SELECT', 'UPDATE'] END LOOP
      IF (obj.relkind = 'r' AND NOT has_table_privilege(runs_owner, obj.oid, priv))
          OR (obj.relkind = 'S' AND NOT has_sequence_privilege(runs_owner, obj.oid, priv)) THEN
        EXECUTE format('GRANT %s ON %s %s TO %I', priv, CASE WHEN obj.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, obj.oid::regclass, runs_owner);
      END IF;
    END LOOP;
  END LOOP;
  FOR obj IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = schema_oid AND p.proname LIKE 'rmapp\_%' LOOP
    IF NOT has_function_privilege(runs_owner, obj.oid, 'EXECUTE') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', obj.oid::regprocedure, runs_owner);
    END IF;
  END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE EXCEPTION 'rmapp migration 0017: the owner of rmapp_runs (%) lacks privileges on rmapp objects another role created, and % cannot grant them: %', runs_owner, current_user, SQLERRM
    USING HINT = 'Run rmapp migrate as a superuser, or as the role that ran the earlier migrations.';
END $$;
