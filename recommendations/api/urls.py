from django.urls import path

from . import views

urlpatterns = [
    path("customers/<str:external_id>/recommendations/", views.CustomerRecommendationsApi.as_view(),
         name="api-customer-recommendations"),
    path("items/<str:external_id>/similar/", views.ItemSimilarApi.as_view(), name="api-item-similar"),
    path("ping/", views.PingApi.as_view(), name="api-ping"),
]
