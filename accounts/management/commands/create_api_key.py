"""Create (or revoke) a storefront API key.

    python manage.py create_api_key "Web shop" --scopes events:write,customers:read
    python manage.py create_api_key --revoke 1a2b3c4d

The key is printed once, alone on the last line of output, so scripts can take it with
`| tail -n 1`. Only its hash is stored.
"""
from django.core.management.base import BaseCommand, CommandError

from accounts.choices import ApiScope
from accounts.models import ApiKey
from accounts.services.api_keys import api_key_create, api_key_revoke
from crm.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a storefront API key with the given scopes and print it once (last line), or revoke one."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="A name for the key, e.g. the storefront it is for.")
        parser.add_argument(
            "--scopes",
            help=f"Comma-separated scopes: {', '.join(ApiScope.values)}.",
        )
        parser.add_argument("--revoke", metavar="PREFIX", help="Revoke the key with this prefix instead of creating one.")

    def handle(self, *args, name=None, scopes=None, revoke=None, **options):
        if revoke:
            if name or scopes:
                raise CommandError("--revoke takes only the key's prefix; leave out NAME and --scopes.")
            return self._revoke(revoke)
        if not name:
            raise CommandError("Give the key a NAME (or use --revoke PREFIX).")
        if not scopes:
            raise CommandError(f"Give --scopes, comma-separated, from: {', '.join(ApiScope.values)}.")
        try:
            key, plain = api_key_create(name=name, scopes=scopes)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created API key '{key.name}' (prefix {key.prefix}) with scopes: {', '.join(key.scopes)}.")
        self.stdout.write("Store it now: it is shown only this once. Send it as 'Authorization: Api-Key <key>'.")
        self.stdout.write(plain)

    def _revoke(self, prefix: str) -> None:
        prefix = prefix.strip()
        # Accept the whole key too ("sk_<prefix>_<secret>"): people paste what they have.
        parts = prefix.split("_")
        if len(parts) >= 3 and parts[0] == "sk":
            prefix = parts[1]
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"No API key with prefix '{prefix}'.")
        already = key.revoked_at is not None
        api_key_revoke(key=key)
        if already:
            self.stdout.write(f"API key '{key.name}' (prefix {key.prefix}) was already revoked at {key.revoked_at:%Y-%m-%d %H:%M:%SZ}.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Revoked API key '{key.name}' (prefix {key.prefix})."))
