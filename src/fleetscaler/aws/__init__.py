"""Thin adapters over AWS service APIs (SageMaker, CloudWatch). Clients are created lazily, once."""
