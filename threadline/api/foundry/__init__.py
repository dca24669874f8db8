"""Foundry's new agents (`azure-ai-projects` 2.x): agent versions under a project."""
