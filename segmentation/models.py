"""Segmentation models (dimensions, tiers, features, memberships) arrive with the segmentation issue."""
