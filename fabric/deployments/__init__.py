"""Template deployments (Microsoft.Resources/deployments)."""
