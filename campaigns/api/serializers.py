"""Input and output of the coupon endpoints of the storefront API."""
from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import EXTERNAL_ID_MAX, MoneyField, StrictFieldsMixin

from ..choices import CouponInvalidReason, DiscountKind
from ..models import Coupon, CouponRedemption


class CouponValidateInputSerializer(StrictFieldsMixin, serializers.Serializer):
    customer = serializers.CharField(max_length=EXTERNAL_ID_MAX, help_text="The customer's external id.")
    amount = MoneyField(help_text="The basket amount, e.g. \"59.90\".")


class CouponRedeemInputSerializer(StrictFieldsMixin, serializers.Serializer):
    customer = serializers.CharField(max_length=EXTERNAL_ID_MAX, help_text="The customer's external id.")
    order_id = serializers.CharField(max_length=128, help_text="The storefront's order id: the idempotency key.")
    amount = MoneyField(help_text="The order amount before the discount.")


class CouponOutputSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    discount = serializers.ChoiceField(choices=DiscountKind.choices)
    value = MoneyField()
    min_basket = MoneyField()
    campaign = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()

    class Meta:
        model = Coupon
        fields = ["code", "customer", "campaign", "discount", "value", "min_basket", "currency", "valid_from",
                  "expires_at", "max_uses", "uses", "redeemed_at", "active"]
        read_only_fields = fields

    def get_campaign(self, coupon) -> str | None:
        return coupon.campaign.name if coupon.campaign_id else None

    def get_active(self, coupon) -> bool:
        now = self.context.get("now")
        from django.utils import timezone

        now = now or timezone.now()
        return coupon.valid_from <= now < coupon.expires_at and coupon.uses < coupon.max_uses


class CouponValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=CouponInvalidReason.choices, allow_null=True,
                                     help_text="Why the coupon does not apply; null when valid.")
    discount_amount = MoneyField(allow_null=True, help_text="The discount on this basket when valid.")
    coupon = CouponOutputSerializer(allow_null=True, help_text="The coupon, when it is this customer's.")


class CouponRedemptionSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="coupon.code")
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    amount = MoneyField()
    discount_amount = MoneyField()

    class Meta:
        model = CouponRedemption
        fields = ["code", "customer", "order_id", "amount", "discount_amount", "redeemed_at"]
        read_only_fields = fields
