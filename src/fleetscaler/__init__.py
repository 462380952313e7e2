"""fleetscaler: several SageMaker asynchronous endpoints behaving as one autoscaled fleet."""

__version__ = "0.1.0"
