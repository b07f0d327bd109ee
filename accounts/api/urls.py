from django.urls import path

from . import catalog, customers, events, feedback

urlpatterns = [
    path("events/", events.EventIngestApi.as_view(), name="api-events"),
    path("customers/<str:external_id>/", customers.CustomerDetailApi.as_view(), name="api-customer"),
    path("customers/<str:external_id>/export/", customers.CustomerExportApi.as_view(), name="api-customer-export"),
    path("customers/<str:external_id>/erase/", customers.CustomerEraseApi.as_view(), name="api-customer-erase"),
    path("items/", catalog.ItemUpsertApi.as_view(), name="api-items"),
    path("feedback/", feedback.FeedbackCreateApi.as_view(), name="api-feedback"),
]
