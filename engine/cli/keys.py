"""CLI commands for keys and people: identities, backups, public cards, contacts, trusted
Content Credentials signers, history."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.support import CliError, ledger_from_env, need_passphrase
from engine.files import read_file, write_file

NO_IDENTITY = "no identity: create one with faketagger identity create --name NAME"


def _chosen(ledger, args):
    """The identity --identity names (key ID or name), else the default one."""
    choice = getattr(args, "identity", None)
    if choice is None and ledger.default_identity() is None and not ledger.list_identities():
        raise CliError(NO_IDENTITY)
    return ledger.resolve_identity(choice)


def cmd_identity_create(args) -> int:
    with ledger_from_env() as ledger:
        ident = ledger.create_identity(args.name, need_passphrase(confirm=True))
        print(f"Created identity {ident.name!r}  key ID {ident.key_id}")
        print(f"Fingerprint: {ident.fingerprint}")
        print("Keep your passphrase safe and back the key up: faketagger identity backup FILE")
    return 0


def cmd_identity_list(args) -> int:
    with ledger_from_env() as ledger:
        idents = ledger.list_identities()
        default = ledger.default_identity()
        if not idents:
            print(f"No identity yet. {NO_IDENTITY.split(': ', 1)[1].capitalize()}")
        for ident in idents:
            mark = "*" if default and ident.key_id == default.key_id else " "
            left = ledger.serials_left(ident.key_id)
            print(f"{mark} {ident.key_id}  {ident.name}  (created {ident.created[:10]}, "
                  f"{left} tag serials left)")
            print(f"    fingerprint {ident.fingerprint}")
    return 0


def cmd_identity_subkeys(args) -> int:
    """List the identity's certified sub-keys (``--create``: certify a new one)."""
    with ledger_from_env() as ledger:
        ident = _chosen(ledger, args)
        if args.create:
            sub = ledger.create_subkey(ident.key_id, need_passphrase())
            print(f"Created certified sub-key {sub.key_id} of {ident.name} "
                  f"({ident.key_id}); export your card again so contacts can verify its "
                  "tags")
        subs = ledger.subkeys(ident.key_id)
        if not subs:
            print(f"{ident.name} ({ident.key_id}) has no sub-keys; one is created "
                  "automatically when its own tag serials run out")
        for s in subs:
            print(f"  {s.key_id}  sub-key of {ident.key_id}  (certified "
                  f"{s.created[:10]}, {ledger.serials_left(s.key_id)} tag serials left)")
            print(f"    fingerprint {s.fingerprint}")
    return 0


def cmd_identity_backup(args) -> int:
    with ledger_from_env() as ledger:
        ident = _chosen(ledger, args)
        write_file(Path(args.file), ledger.export_backup(ident.key_id), overwrite=args.force)
    print(f"Backed up {ident.name} ({ident.key_id}) to {args.file}. The key inside stays "
          "encrypted with your passphrase; you need both to restore it.")
    return 0


def cmd_identity_restore(args) -> int:
    data = read_file(Path(args.file))
    with ledger_from_env() as ledger:
        ident = ledger.restore_backup(data, need_passphrase())
        left = ledger.serials_left(ident.key_id)
    print(f"Restored {ident.name} ({ident.key_id}); {left} tag serials left. Serials "
          "continue after the highest one this backup or this computer knows of.")
    return 0


def cmd_identity_passphrase(args) -> int:
    with ledger_from_env() as ledger:
        ident = _chosen(ledger, args)
        old = need_passphrase(prompt="Current passphrase: ")
        new = need_passphrase(confirm=True, env="FAKETAGGER_NEW_PASSPHRASE",
                              prompt="New passphrase: ")
        ledger.change_passphrase(ident.key_id, old, new)
    print(f"Changed the passphrase of {ident.name} ({ident.key_id})")
    return 0


def cmd_card_export(args) -> int:
    with ledger_from_env() as ledger:
        ident = _chosen(ledger, args)
        data = ledger.export_card(ident.key_id, include_records=not args.no_records)
    write_file(Path(args.file), data, overwrite=args.force)
    print(f"Exported the public card of {ident.name} ({ident.key_id}) to {args.file}")
    return 0


def cmd_card_import(args) -> int:
    data = read_file(Path(args.file))
    with ledger_from_env() as ledger:
        contact = ledger.import_card(data)
    print(f"Imported {contact.name} ({contact.key_id}) with {contact.record_count} "
          f"signed tag records. Fingerprint: {contact.fingerprint}")
    print("Compare the fingerprint with the owner over a channel you trust.")
    return 0


def cmd_contacts_list(args) -> int:
    with ledger_from_env() as ledger:
        contacts = ledger.list_contacts()
    if not contacts:
        print("No contacts yet. Import a card: faketagger card import FILE")
    for c in contacts:
        print(f"{c.key_id}  {c.name}  ({c.record_count} records, imported "
              f"{c.imported[:10]})\n    fingerprint {c.fingerprint}")
    return 0


def cmd_contacts_remove(args) -> int:
    from engine.identity import KeyId

    with ledger_from_env() as ledger:
        if not ledger.remove_contact(KeyId.parse(args.key_id)):
            raise CliError(f"no contact with key ID {args.key_id}")
    print(f"Removed contact {args.key_id} and its records")
    return 0


def cmd_trust_add(args) -> int:
    data = read_file(Path(args.file))
    with ledger_from_env() as ledger:
        anchor = ledger.credentials.add_anchor(data, args.label)
    print(f"Trusting Content Credentials signed under {anchor.label} "
          f"(fingerprint {anchor.fingerprint})")
    return 0


def cmd_trust_list(args) -> int:
    with ledger_from_env() as ledger:
        added = ledger.credentials.added_anchors()
        ours = [a for a in ledger.credentials.anchors() if a.signing_serial is not None]
    for a in ours:
        print(f"{a.fingerprint}  {a.label}  (from the card)")
    for a in added:
        print(f"{a.fingerprint}  {a.label}  (added)")
    if not ours and not added:
        print("No trusted Content Credentials signers yet: import a card (faketagger card "
              "import) or add a CA certificate (faketagger trust add FILE)")
    return 0


def cmd_trust_remove(args) -> int:
    with ledger_from_env() as ledger:
        anchor = ledger.credentials.remove_anchor(args.fingerprint)
    print(f"No longer trusting {anchor.label} ({anchor.fingerprint})")
    return 0


def cmd_history(args) -> int:
    with ledger_from_env() as ledger:
        rows = ledger.history(args.search or "", limit=args.limit)
    if not rows:
        print("Nothing tagged yet." if not args.search else "No match.")
    for r in rows:
        serials = ", ".join(str(s) for s in r.serials)
        print(f"{r.created[:19].replace('T', ' ')}  {r.original_path} -> {r.output_path}  "
              f"serials {serials}")
    return 0


def cmd_ledger_check(args) -> int:
    from engine import paths
    from engine.store.ledger_backups import check_ledger

    result = check_ledger(paths.ledger_path())
    newest = result.backups[0].name if result.backups else "none"
    if result.ok and not result.path.exists():
        print(f"no ledger yet at {result.path}: it is made with your first identity")
        return 0
    if result.ok:
        with ledger_from_env() as ledger:  # opening also finishes interrupted tag jobs
            rec, pending = ledger.recovered, ledger.pending_jobs()
        print(f"ledger {result.path}: ok ({len(result.backups)} automatic backups, newest "
              f"{newest})")
        if rec:
            print(f"finished {len(rec.finished)} interrupted tag job(s), rolled back "
                  f"{len(rec.rolled_back)} (freeing {rec.freed_serials} serials)")
        if pending:
            print(f"{len(pending)} tag job(s) still running in another FakeTagger")
        return 0
    print(f"ledger {result.path}: DAMAGED: {'; '.join(result.problems[:3])}")
    print(f"automatic backups: {len(result.backups)} (newest {newest}). "
          "`faketagger ledger restore` puts the newest good one back, keeping this file aside.")
    return 1


def cmd_ledger_restore(args) -> int:
    from engine import paths
    from engine.store.ledger_backups import check_ledger, restore_ledger

    path = paths.ledger_path()
    if check_ledger(path).ok and not args.force:
        raise CliError(f"ledger {path} is not damaged; use --force to replace it with a backup "
                       "anyway (it is kept aside)")
    used, aside = restore_ledger(path, Path(args.backup) if args.backup else None)
    with ledger_from_env() as ledger:  # raises serial counters to this machine's marks
        count = len(ledger.history(limit=1_000_000))
    print(f"Restored the ledger from {used} ({count} tagged files in its history).")
    if aside is not None:
        print(f"The previous file is kept as {aside}.")
    print("Photos tagged after that backup are missing from the history; their serials are "
          "never reused.")
    return 0


def cmd_ledger_backup(args) -> int:
    with ledger_from_env() as ledger:
        made = ledger.backup_now()
    print(f"Ledger backed up to {made}")
    return 0


def add_key_commands(sub: argparse._SubParsersAction) -> None:
    """Register the identity, card, contacts and history commands on the main parser."""
    ident = sub.add_parser("identity", help="create, list, back up your identities").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    c = ident.add_parser("create", help="create a new identity (Ed25519 key pair)")
    c.add_argument("--name", required=True)
    c.set_defaults(func=cmd_identity_create)
    ident.add_parser("list", help="list identities").set_defaults(func=cmd_identity_list)
    sk = ident.add_parser("subkeys", help="list the certified sub-keys of an identity (more "
                          "tag serials; made automatically when the identity's run out)")
    sk.add_argument("--identity", metavar="KEY-ID|NAME", help="which identity (default: yours)")
    sk.add_argument("--create", action="store_true", help="certify a new sub-key now")
    sk.set_defaults(func=cmd_identity_subkeys)
    b = ident.add_parser("backup", help="write an encrypted backup of your key")
    b.add_argument("file")
    b.add_argument("--force", action="store_true", help="replace an existing file")
    b.add_argument("--identity", metavar="KEY-ID|NAME", help="which identity (default: yours)")
    b.set_defaults(func=cmd_identity_backup)
    r = ident.add_parser("restore", help="restore an identity from a backup")
    r.add_argument("file")
    r.set_defaults(func=cmd_identity_restore)
    pp = ident.add_parser("passphrase", help="change your passphrase (new one from a prompt or "
                          "FAKETAGGER_NEW_PASSPHRASE)")
    pp.add_argument("--identity", metavar="KEY-ID|NAME", help="which identity (default: yours)")
    pp.set_defaults(func=cmd_identity_passphrase)

    card = sub.add_parser("card", help="export your public card, import others'").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    e = card.add_parser("export", help="write your public card (with signed tag records)")
    e.add_argument("file")
    e.add_argument("--no-records", action="store_true", help="leave the tag records out")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.add_argument("--identity", metavar="KEY-ID|NAME", help="which identity (default: yours)")
    e.set_defaults(func=cmd_card_export)
    i = card.add_parser("import", help="import a contact's public card")
    i.add_argument("file")
    i.set_defaults(func=cmd_card_import)

    con = sub.add_parser("contacts", help="list or remove imported contacts").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    con.add_parser("list", help="list contacts").set_defaults(func=cmd_contacts_list)
    rm = con.add_parser("remove", help="forget a contact and their records")
    rm.add_argument("key_id", help="e.g. 3F2A-91C0")
    rm.set_defaults(func=cmd_contacts_remove)

    tr = sub.add_parser("trust", help="whose Content Credentials (C2PA) verify calls trusted"
                        ).add_subparsers(dest="action", metavar="ACTION", required=True)
    ta = tr.add_parser("add", help="trust a CA certificate (PEM or DER), e.g. a newsroom's")
    ta.add_argument("file")
    ta.add_argument("--label", help="how verify names it (default: the certificate's subject)")
    ta.set_defaults(func=cmd_trust_add)
    tr.add_parser("list", help="list trusted signers").set_defaults(func=cmd_trust_list)
    trm = tr.add_parser("remove", help="stop trusting an added certificate")
    trm.add_argument("fingerprint", help="as `trust list` shows it (a prefix will do)")
    trm.set_defaults(func=cmd_trust_remove)

    led = sub.add_parser("ledger", help="check, back up or restore the local ledger"
                         ).add_subparsers(dest="action", metavar="ACTION", required=True)
    led.add_parser("check", help="check the ledger's integrity; finish interrupted tag jobs"
                   ).set_defaults(func=cmd_ledger_check)
    lr = led.add_parser("restore", help="put the newest good automatic backup back (the current "
                        "file is kept aside)")
    lr.add_argument("backup", nargs="?", help="a backup file (default: the newest good one)")
    lr.add_argument("--force", action="store_true", help="even if the ledger is not damaged")
    lr.set_defaults(func=cmd_ledger_restore)
    led.add_parser("backup", help="make an automatic-style backup now"
                   ).set_defaults(func=cmd_ledger_backup)

    h = sub.add_parser("history", help="what you have tagged (from the local ledger)")
    h.add_argument("search", nargs="?", help="filter by path, name or key ID")
    h.add_argument("--limit", type=int, default=200)
    h.set_defaults(func=cmd_history)
