"""The local fleet: fleetscaler's Lambdas against AWS stand-ins on 127.0.0.1, no AWS account needed."""
