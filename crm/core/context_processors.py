from django.conf import settings


def stratum(request) -> dict:
    return {"CURRENCY": settings.CURRENCY, "DEMO_MODE": settings.DEMO_MODE}
