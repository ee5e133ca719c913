"""End-to-end check of Ferrobase's tables surface with the unmodified Python `postgrest`
client (PyPI). Usage: python3 postgrest_client.py <tables base URL> <admin token>.
Expects the empty table `notes (id, body UNIQUE)` and the table `tag (id, name)` holding one
row, 'red'. Exits non-zero on the first failed check."""

import sys

from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

url, token = sys.argv[1], sys.argv[2]
db = SyncPostgrestClient(url, headers={"Authorization": f"Bearer {token}"})
anon = SyncPostgrestClient(url)


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok - {what}")


def error_of(request):
    """The APIError a request raises (it must raise one)."""
    try:
        request.execute()
    except APIError as err:
        return err
    raise SystemExit("FAILED: the request succeeded where an error was expected")


res = db.from_("notes").insert({"body": "first"}).execute()
check(res.data[0]["body"] == "first", "insert answers the row")
res = db.from_("notes").select("body").eq("body", "first").execute()
check(res.data == [{"body": "first"}], "filtered select")
res = db.from_("notes").update({"body": "changed"}).eq("body", "first").execute()
check(res.data[0]["body"] == "changed", "update by filter")

# The client shows PostgREST's error fields: message, code, details, hint.
err = error_of(db.from_("notes").select("nope"))
check(err.message == "unknown column 'nope' in 'notes'", f"message of an unknown column: {err.message!r}")
check(err.code == "42703", f"code of an unknown column: {err.code!r}")
err = error_of(db.from_("notes").insert({"body": "changed"}))
check(err.code == "23505" and "already exists" in err.message, f"a duplicate: {err.code} {err.message}")
err = error_of(db.from_("notes").insert({"body": "x", "nosuch": 1}))
check(err.code == "PGRST204" and "nosuch" in (err.details or ""), f"an unknown body column: {err.code} {err.details}")
err = error_of(anon.from_("notes").insert({"body": "anonymous"}))
check(err.code == "42501", f"a refused anonymous write: {err.code} {err.message}")
err = error_of(db.from_("nosuchtable").select("*"))
check(err.code == "42P01" and "nosuchtable" in err.message, f"an unknown table: {err.code} {err.message}")

# Endpoints are pluralised: the table `tag` answers at `tags`.
res = db.from_("tags").select("name").execute()
check(res.data == [{"name": "red"}], "a singular table under its plural name")
res = db.from_("tags").insert({"name": "blue"}).execute()
check(res.data[0]["name"] == "blue", "an insert through the plural name")
check(len(db.from_("tag").select("id").execute().data) == 2, "the same table by its own name")

print("postgrest-py: every check passed")
