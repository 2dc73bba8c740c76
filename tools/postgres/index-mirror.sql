-- FerretDB v1 on PostgreSQL hands a query's top-level equalities to PostgreSQL as
-- `_jsonb->'field' @> value`, but makes each index a B-tree on `(_jsonb->'field')`, which
-- cannot answer `@>`: every find, claim and update then reads the whole table. `make postgres`
-- installs this event trigger in template1, so each database a stack makes carries it: when
-- FerretDB creates an index, a GIN index (which does answer `@>`) is made beside it on each
-- top-level field it names. The store layer and the indexes it declares do not change; MongoDB
-- uses those indexes as they are. Nested fields are left alone (FerretDB asks for them with
-- `#>`, a different expression). On a PostgreSQL of your own, apply it as a superuser with
-- `psql -1 -v sum=manual -d template1 -f tools/postgres/index-mirror.sql` before the stacks make
-- their databases (it names the role `lanegate`: edit the ALTER ROLE line for another).
SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION lanegate_index_mirror() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  created record;
  expression text;
BEGIN
  FOR created IN
    SELECT i.indexrelid, i.indrelid, i.indnkeyatts, n.nspname, c.relname
    FROM pg_event_trigger_ddl_commands() AS d
    JOIN pg_index AS i ON i.indexrelid = d.objid
    JOIN pg_class AS ix ON ix.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = ix.relam AND am.amname = 'btree'
    JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE d.command_tag = 'CREATE INDEX'
  LOOP
    FOR column_number IN 1 .. created.indnkeyatts LOOP
      expression := pg_get_indexdef(created.indexrelid, column_number, true);
      CONTINUE WHEN expression !~ '^\(_jsonb -> ''([^'']|'''')*''::text\)$';
      -- A mirror that cannot be made leaves FerretDB's own index standing, and says so.
      BEGIN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin (%s)',
                       left(created.relname, 40) || '_'
                         || left(md5(created.indrelid::text || expression), 12) || '_gin',
                       created.nspname, created.relname, expression);
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'no GIN index beside %: %', created.indexrelid::regclass, SQLERRM;
      END;
    END LOOP;
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS lanegate_index_mirror;
CREATE EVENT TRIGGER lanegate_index_mirror ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION lanegate_index_mirror();

-- FerretDB prepares each statement with the field's name as a parameter (`_jsonb->$1`); a
-- generic plan cannot match an index on `_jsonb->'field'`, so plan each call for its values.
ALTER ROLE lanegate SET plan_cache_mode = force_custom_plan;

-- `make postgres` compares this with the file's checksum to know whether to apply it again.
COMMENT ON EVENT TRIGGER lanegate_index_mirror IS :'sum';
