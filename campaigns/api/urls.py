from django.urls import path

from . import views

urlpatterns = [
    path("coupons/<str:code>/validate/", views.CouponValidateApi.as_view(), name="api-coupon-validate"),
    path("coupons/<str:code>/redeem/", views.CouponRedeemApi.as_view(), name="api-coupon-redeem"),
    path("customers/<str:external_id>/coupons/", views.CustomerCouponsApi.as_view(), name="api-customer-coupons"),
]
