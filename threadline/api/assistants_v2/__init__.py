"""The OpenAI Assistants API v2 and its Azure AI Agents variant: routes, and the records
rendered in their shape (`render.py`)."""
