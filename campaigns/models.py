"""Campaign models (campaigns, messages, coupons) arrive with the campaigns issue."""
