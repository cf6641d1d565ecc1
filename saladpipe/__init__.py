"""saladpipe: choose, synthesize and ship the speech data that closes a speech LLM's gap."""

__version__ = "0.1.0"
