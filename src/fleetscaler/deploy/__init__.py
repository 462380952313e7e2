"""Deployment: CloudFormation templates, the Lambda code package, and stack deploy/destroy."""
