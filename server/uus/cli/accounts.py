"""`uus admin create|bootstrap`, `uus users list`."""

from __future__ import annotations

import sys


def admin_create(args) -> int:
    from uus.accounts.services import user_create
    from uus.cli.main import CliError

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise CliError("no password given on standard input")
    user = user_create(username=args.username, password=password, role=args.role, email=args.email)
    print(f"created {user.role} {user.username}")
    return 0


def admin_bootstrap(args) -> int:
    from uus.accounts.services import admin_bootstrap as bootstrap

    made = bootstrap()
    if made is None:
        print("an administrator already exists; nothing to do")
        return 0
    user, password = made
    print("=" * 64)
    print("First administrator created. This password is shown only now:")
    print(f"  user:     {user.username}")
    print(f"  password: {password}")
    print("=" * 64, flush=True)
    return 0


def users_list(args) -> int:
    from uus.accounts.api.serializers import UserSerializer
    from uus.accounts.models import User
    from uus.cli.output import print_json

    users = User.objects.order_by("username")
    if args.json:
        print_json(UserSerializer(users, many=True).data)
    else:
        for u in users:
            print(f"{u.username:24} {u.role:10} {u.source}")
    return 0


def register(sub) -> None:
    admin = sub.add_parser("admin", help="administrator accounts").add_subparsers(dest="verb", metavar="VERB")
    admin.required = True
    p = admin.add_parser("create", help="create a user (password read from standard input)")
    p.add_argument("username")
    p.add_argument("--role", default="admin", choices=["admin", "operator", "auditor"])
    p.add_argument("--email", default="")
    p.set_defaults(func=admin_create)
    p = admin.add_parser("bootstrap", help="create the first administrator if none exists; prints its password once")
    p.set_defaults(func=admin_bootstrap)
    users = sub.add_parser("users", help="people").add_subparsers(dest="verb", metavar="VERB")
    users.required = True
    p = users.add_parser("list", help="list users")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_list)
