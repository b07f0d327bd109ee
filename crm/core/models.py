from django.db import models


class BaseModel(models.Model):
    """Every Stratum model carries when it was created (indexed) and last updated."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


from .locks import JobLock  # noqa: E402,F401  (registered with the core app)
