"""The store's shape (issue 19, item 6): the Ledger is a thin facade over small store objects,
each given its collaborators in its constructor.

What this pins, read from the source with ast (no database needed):

- no store module reaches into another object's private names (``x._name`` only on ``self``
  or ``cls``), imports another module's private names, or redeclares a host's methods under
  ``TYPE_CHECKING`` (the mixin pattern this replaced);
- no store class has a base class from the store (no mixins), and no store module imports the
  Ledger (stores are given collaborators; they never look for them);
- every public Ledger method is one delegation to a store object, so behaviour lives in the
  stores and the Ledger's own code stays wiring;
- the Ledger's public API is the one callers outside engine/store use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engine.store
from engine.store.ledger import Ledger

STORE = Path(engine.store.__file__).parent
MODULES = sorted(STORE.glob("*.py"))

#: What callers (engine, app, tests) use on a Ledger; removing one breaks them.
PUBLIC_API = {
    "close", "checkpoint_backup", "backup_now",
    "create_identity", "list_identities", "get_identity", "resolve_identity",
    "default_identity", "set_default", "unlock", "change_passphrase", "own_mac_key", "subkeys",
    "parent_of", "create_subkey", "subkey_certs", "tagging_key",
    "export_backup", "restore_backup", "serials_left", "allocate_serials",
    "import_card", "list_contacts", "get_contact", "remove_contact", "export_card",
    "lookup_owner",
    "add_record", "add_records", "records_for", "records_of", "known_payloads", "history",
    "original_path",
    "begin_tag", "begin_tags", "stage_tag", "move_tag", "finish_tag", "abort_tag",
    "pending_jobs", "recover",
    "create_batch", "batch_job", "batch_jobs", "batch_items", "set_batch_item", "close_batch",
}
#: Private Ledger names that tests use as seams (to look inside, fail or kill a step).
TEST_SEAMS = {"_conn", "_write", "_write_mark", "_confirm_serial_mark"}
#: The store objects a Ledger exposes as attributes.
STORES = {"db", "serials", "records", "contacts", "identities", "key_backups", "tagging",
          "batches", "credentials"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_store_module_touches_another_objects_private_names(path: Path) -> None:
    bad = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine"):
            bad += [f"line {node.lineno}: imports {a.name} from {node.module}"
                    for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Name) and node.id == "TYPE_CHECKING":
            bad.append(f"line {node.lineno}: TYPE_CHECKING (a host's methods redeclared?)")
    assert not bad, f"{path.name}: " + "; ".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_stores_are_not_mixins_and_never_import_the_ledger(path: Path) -> None:
    tree = _tree(path)
    store_names = {f"engine.store.{p.stem}" for p in MODULES}
    imported_from_store = {a.asname or a.name for node in ast.walk(tree)
                           if isinstance(node, ast.ImportFrom) and node.module in store_names
                           for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            assert not bases & imported_from_store, f"{path.name}: {node.name} mixes in {bases}"
        if path.stem != "ledger" and isinstance(node, ast.ImportFrom):
            assert node.module != "engine.store.ledger", f"{path.name} imports the Ledger"


def _ledger_class() -> ast.ClassDef:
    tree = _tree(STORE / "ledger.py")
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ledger")


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    """The function's statements without its docstring, `with self.db.lock:` opened up."""
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.With) and ast.unparse(stmt.items[0].context_expr) == "self.db.lock":
            out += stmt.body
        else:
            out.append(stmt)
    return out


def _delegates_to(stmt: ast.stmt) -> str | None:
    """`self.<store>` when *stmt* is `[return] self.<store>.<method>(...)`, else None."""
    value = stmt.value if isinstance(stmt, ast.Return | ast.Expr) else None
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        owner = value.func.value
        if isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) \
                and owner.value.id == "self" and not _private(owner.attr):
            return owner.attr
    return None


def test_every_public_ledger_method_is_one_delegation_to_a_store() -> None:
    methods = [n for n in _ledger_class().body if isinstance(n, ast.FunctionDef)]
    public = [m for m in methods if not m.name.startswith("_")]
    assert public
    for fn in public:
        body = _body(fn)
        targets = {_delegates_to(s) for s in body}
        assert len(body) <= 2 and targets <= STORES, (
            f"Ledger.{fn.name} is not a thin delegation: {ast.unparse(fn)}")
    for fn in methods:  # the seams too: at most one statement each
        if fn.name in TEST_SEAMS:
            assert len(_body(fn)) == 1, f"Ledger.{fn.name} does more than delegate"


def test_ledger_public_api_and_store_attributes(tmp_path: Path) -> None:
    public = {n for n in dir(Ledger) if not n.startswith("_")}
    assert public >= PUBLIC_API, f"missing: {sorted(PUBLIC_API - public)}"
    assert not public - PUBLIC_API, f"new public methods: list them here: {public - PUBLIC_API}"
    for name in TEST_SEAMS:
        assert hasattr(Ledger, name)
    with Ledger(tmp_path / "ledger.sqlite3", keys_dir=tmp_path / "keys") as ledger:
        for name in STORES:
            assert getattr(ledger, name).__class__.__module__.startswith("engine.store."), name
        # One database handle, shared: every store was given the same one.
        handles = {id(vars(getattr(ledger, s)).get("_db")) for s in STORES - {"db"}}
        assert handles == {id(ledger.db)}
