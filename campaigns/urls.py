"""Public tracking URLs, included at /t/ (no login)."""
from django.urls import path

from . import views

app_name = "campaigns_public"

urlpatterns = [
    path("o/<str:token>/", views.open_pixel, name="open"),
    path("c/<str:token>/", views.click_redirect, name="click"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
