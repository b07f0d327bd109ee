"""Coupons for storefronts: validate, redeem (idempotent by order id), a customer's coupons."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import ErrorSerializer, error_responses
from accounts.services.customers import customer_get

from ..coupons import coupon_redeem, coupon_validate, customer_coupons
from .serializers import (CouponOutputSerializer, CouponRedeemInputSerializer, CouponRedemptionSerializer,
                          CouponValidateInputSerializer, CouponValidationSerializer)

CODE = OpenApiParameter("code", str, OpenApiParameter.PATH, description="The coupon code (case and dashes ignored).")


class CouponValidateApi(APIView):
    required_scope = "coupons:redeem"

    @extend_schema(
        operation_id="coupon_validate", tags=["coupons"], summary="Check whether a coupon applies to a basket",
        description="**Scope:** `coupons:redeem`.\n\nReads only. `valid: false` comes with the `reason`: "
        "`unknown`, `expired`, `not_yet_valid`, `used`, `wrong_customer` or `basket_too_small`.",
        parameters=[CODE], request=CouponValidateInputSerializer,
        responses={200: CouponValidationSerializer, **error_responses(400, 401, 403, 429)},
        examples=[OpenApiExample("Basket too small", response_only=True,
                                 value={"valid": False, "reason": "basket_too_small", "discount_amount": None,
                                        "coupon": None})],
    )
    def post(self, request, code: str):
        data = CouponValidateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        check = coupon_validate(code=code, customer=data.validated_data["customer"], amount=data.validated_data["amount"])
        own = check.coupon if check.coupon is not None and check.reason != "wrong_customer" else None
        return Response({"valid": check.valid, "reason": check.reason or None,
                         "discount_amount": str(check.discount) if check.discount is not None else None,
                         "coupon": CouponOutputSerializer(own).data if own else None})


class CouponRedeemApi(APIView):
    required_scope = "coupons:redeem"

    @extend_schema(
        operation_id="coupon_redeem", tags=["coupons"], summary="Redeem a coupon for an order",
        description="**Scope:** `coupons:redeem`.\n\nAtomic and idempotent by `order_id`: sending the same order "
        "again returns the same redemption (header `Idempotent-Replayed: true`) and uses nothing. When the coupon "
        "does not apply: 409 `coupon_not_redeemable` with `extra.reason` (404 for an unknown code). Writes a "
        "`coupon_redeem` event.",
        parameters=[CODE], request=CouponRedeemInputSerializer,
        responses={200: CouponRedemptionSerializer,
                   404: OpenApiResponse(ErrorSerializer, description="Unknown code (`extra.reason` = `unknown`)."),
                   409: OpenApiResponse(ErrorSerializer, description="Not redeemable; `extra.reason` says why."),
                   **error_responses(400, 401, 403, 429)},
    )
    def post(self, request, code: str):
        data = CouponRedeemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = coupon_redeem(code=code, **data.validated_data)
        response = Response(CouponRedemptionSerializer(result.redemption).data)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class CustomerCouponsApi(APIView):
    required_scope = "customers:read"

    @extend_schema(
        operation_id="customer_coupons", tags=["coupons"], summary="A customer's coupons",
        description="**Scope:** `customers:read`.\n\nNewest first. `?active=1` lists only those usable now.",
        parameters=[OpenApiParameter("external_id", str, OpenApiParameter.PATH),
                    OpenApiParameter("active", bool, OpenApiParameter.QUERY, required=False)],
        responses={200: CouponOutputSerializer(many=True), **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        active = request.query_params.get("active") in ("1", "true", "yes")
        coupons = customer_coupons(customer=customer, active_only=active).select_related("customer")[:500]
        return Response(CouponOutputSerializer(coupons, many=True).data)
