"""The stacks' store engines: chosen by the environment, started, restarted and cleaned up."""

import subprocess
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from devtools.stack import FERRETDB, POSTGRES_URL, Stack, StoreEngine


def test_the_engine_is_the_one_the_environment_names() -> None:
    chosen = StoreEngine.from_environment({"LANEGATE_TEST_STORE": "ferretdb-sqlite"})

    assert "ferretdb-sqlite" == chosen.engine
    assert chosen.runs_here


def test_a_store_uri_alone_means_the_server_at_that_uri() -> None:
    chosen = StoreEngine.from_environment({"LANEGATE_TEST_STORE_URI": "mongodb://db:27017/"})

    assert ("uri", "mongodb://db:27017/") == (chosen.engine, chosen.uri)
    assert not chosen.runs_here


def test_without_a_choice_the_default_engine_runs() -> None:
    assert "mongoeco" == StoreEngine.from_environment({}).engine
    assert "ferretdb" == StoreEngine.from_environment({}, default="ferretdb").engine


@pytest.mark.parametrize(
    "env",
    [{"LANEGATE_TEST_STORE": "mongo"}, {"LANEGATE_TEST_STORE": "uri"}],
    ids=["unknown engine", "uri without a URI"],
)
def test_a_choice_that_names_no_store_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="LANEGATE_TEST_STORE"):
        StoreEngine.from_environment(env)


def test_a_stack_on_a_uri_talks_to_that_server_and_starts_no_store(tmp_path: Path) -> None:
    stack = Stack.create(
        tmp_path, settings={}, store=StoreEngine(engine="uri", uri="mongodb://db.example:27018/")
    )

    assert "mongodb://db.example:27018/" == stack.store_uri == stack.env["LANEGATE_MONGO_URI"]
    assert 27018 == stack.store_port


def postgres_databases() -> set[str]:
    listed = subprocess.run(
        ["psql", "-tA", POSTGRES_URL, "-c", "SELECT datname FROM pg_database"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(listed.stdout.split())


@pytest.mark.skipif(not FERRETDB.exists(), reason="FerretDB is not built: make ferretdb")
@pytest.mark.parametrize("engine", ["ferretdb", "ferretdb-sqlite"])
async def test_ferretdb_keeps_the_data_across_a_restart_and_is_cleaned_up_at_the_end(
    tmp_path: Path, engine: str
) -> None:
    chosen = StoreEngine.from_environment({"LANEGATE_TEST_STORE": engine})
    stack = Stack.create(tmp_path / "stack", settings={}, store=chosen)
    try:
        stack.start_store()
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.store_uri)
        await client["kept"]["things"].insert_one({"_id": "one"})
        await client.close()
        stack.kill("store")
        stack.start_store()
        client = AsyncMongoClient(stack.store_uri)
        assert {"_id": "one"} == await client["kept"]["things"].find_one({})
        await client.close()
        database = stack.store_database
    finally:
        stack.stop_all()

    if engine == "ferretdb":
        assert database is not None
        assert database not in postgres_databases()
    else:
        assert not (tmp_path / "stack" / "ferretdb-sqlite").exists()
