import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
django.setup(set_prefix=False)

from crm.core.wsgi import StratumWSGIApplication  # noqa: E402 (needs the settings configured)

application = StratumWSGIApplication()
