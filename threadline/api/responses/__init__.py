"""The OpenAI Responses wire format: Conversations and their items, rendered from the same
threads and messages the Assistants format renders."""
