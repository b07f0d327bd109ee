"""The storefront API, version 1: every app's API routes under /api/v1/."""
from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("segmentation.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("recommendations.api.urls")),
]
