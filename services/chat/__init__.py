"""The chat service: conversations with 이코, answered by a tool-calling assistant (docs/chat.md)."""
