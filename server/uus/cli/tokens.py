"""`uus tokens create|list|revoke`: enrollment tokens for agents."""

from __future__ import annotations


def tokens_create(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import EnrollmentTokenSerializer
    from uus.inventory.services import enrollment_token_create, parse_expiry

    token, key = enrollment_token_create(
        comment=args.comment, group=args.group, expires=parse_expiry(args.expires), max_uses=args.max_uses
    )
    if args.json:
        print_json({**EnrollmentTokenSerializer(token).data, "token": key})
    else:
        print(key)
    return 0


def tokens_list(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import EnrollmentTokenSerializer
    from uus.inventory.models import EnrollmentToken

    tokens = EnrollmentToken.objects.order_by("-created")
    if args.json:
        print_json(EnrollmentTokenSerializer(tokens, many=True).data)
    else:
        for t in tokens:
            state = "usable" if t.is_usable else ("revoked" if t.is_revoked else "spent/expired")
            print(f"{t.pk:5} {t.prefix}…  uses {t.uses}/{t.max_uses or '∞'}  {state}  {t.comment}")
    return 0


def tokens_revoke(args) -> int:
    from uus.cli.main import CliError
    from uus.inventory.models import EnrollmentToken
    from uus.inventory.services import enrollment_token_revoke

    token = EnrollmentToken.objects.filter(pk=args.id).first()
    if token is None:
        raise CliError(f"no enrollment token {args.id}")
    enrollment_token_revoke(token=token)
    print(f"revoked {token.prefix}…")
    return 0


def register(sub) -> None:
    tokens = sub.add_parser("tokens", help="agent enrollment tokens").add_subparsers(dest="verb", metavar="VERB")
    tokens.required = True
    p = tokens.add_parser("create", help="create an enrollment token (printed once)")
    p.add_argument("--group", default="", help="group that machines registering with it join")
    p.add_argument("--expires", default="", help="7d, 12h, 30m or an ISO 8601 time")
    p.add_argument("--max-uses", type=int, default=None)
    p.add_argument("--comment", default="")
    p.add_argument("--json", action="store_true", help='print {"token": ...} and the stored fields')
    p.set_defaults(func=tokens_create)
    p = tokens.add_parser("list", help="list enrollment tokens")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=tokens_list)
    p = tokens.add_parser("revoke", help="revoke an enrollment token")
    p.add_argument("id", type=int)
    p.set_defaults(func=tokens_revoke)
